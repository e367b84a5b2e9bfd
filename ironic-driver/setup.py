"""Only for `pip install ./ironic-driver` (pyproject.toml holds the metadata):
puts the shared floor's data files from the checkout's service/ into the built
package's data/, as install.sh does, so a pip-built package carries them too
(docs/credential-contract.md, "The shared floor")."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

SHARED = ('credential-contract.json', 'rotation-failures.json')
SERVICE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'service')


class BuildWithSharedFloor(build_py):
    def run(self) -> None:
        super().run()
        data = os.path.join(self.build_lib, 'inband_ironic', 'data')
        os.makedirs(data, exist_ok=True)
        for name in SHARED:
            src = os.path.join(SERVICE, name)
            if not os.path.isfile(src):
                raise SystemExit('%s is missing: build from the inband-agent checkout '
                                 '(npm run gen:credential-contract writes it)' % src)
            shutil.copyfile(src, os.path.join(data, name))


setup(cmdclass={'build_py': BuildWithSharedFloor})
