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
  ],
}
