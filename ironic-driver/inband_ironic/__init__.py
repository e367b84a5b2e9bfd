"""inband_ironic: Ironic's `set_bmc_credentials` vendor passthru for nodes whose
running agent (inband-agent) sets BMC users in-band.

A hardware type ``ipmi-inband`` (the ``ipmi`` type plus one vendor interface)
and the vendor interface ``inband-bmc``; see docs/ironic-driver.md.
"""

__version__ = '0.1.0'
