{
  # The native /dev/ipmi0 shim (ipmi-kcs/native/). Built by scripts/build-addon.mjs
  # on `npm ci`; a failed build leaves the reason in build/addon-build-error.txt.
  "targets": [
    {
      "target_name": "ipmi_kcs",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["ipmi-kcs/native/ipmi_kcs.c"],
        }],
      ],
      # Node-API 8 (Node >= 12.22 / 14.17): only the stable ABI, no V8 headers.
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_c": ["-std=gnu11"],
    },
    {
      # The idle daemon's memory give-back (agent/native/memory.cc): V8's own
      # API, so built for this Node only. After ipmi_kcs, and optional: a failed
      # build of it leaves the BMC addon standing (scripts/build-addon.mjs).
      "target_name": "agent_memory",
      # Built after ipmi_kcs (make stops at the first failure): nothing is linked.
      "dependencies": ["ipmi_kcs"],
      "sources": ["agent/native/memory.cc"],
      # node-gyp's own -Wextra flags node.h's NODE_MODULE_INIT cast, not ours.
      "cflags_cc": ["-Wno-cast-function-type"],
    },
  ],
}
