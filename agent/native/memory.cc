// agent_memory.node: what an idle daemon needs to give memory back, and Node
// has no API for.
//
//   compactHeap()        V8's Isolate::LowMemoryNotification(): full
//                        collections until nothing more is freed, compacting
//                        and returning V8's free pages to the kernel. V8 does
//                        this by itself only when its memory reducer decides
//                        to (~8 s after the last allocation burst), and a full
//                        collection from `gc()` does not release pages.
//   releaseFreeMemory()  glibc's malloc_trim(0): the free pages of every
//                        malloc arena go back to the kernel, not only the top
//                        of the main heap that free() trims by itself. true
//                        when some went back; false where the C library has no
//                        malloc_trim (musl).
//
// Apart from ipmi_kcs.node on purpose: that one is Node-API only, stable
// across Node versions, and carries the BMC path. This one uses V8's own API,
// so it loads only into the Node it was built for; when it does not load, the
// daemon keeps its memory and runs as before (agent/memory.ts).
#include <node.h>
#include <v8.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

void CompactHeap(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetIsolate()->LowMemoryNotification();
}

void ReleaseFreeMemory(const v8::FunctionCallbackInfo<v8::Value>& args) {
#if defined(__GLIBC__)
  bool released = malloc_trim(0) == 1;
#else
  bool released = false;
#endif
  args.GetReturnValue().Set(released);
}

}  // namespace

// Context-aware: loadable from worker threads too (nothing here is per-process state).
NODE_MODULE_INIT() {
  NODE_SET_METHOD(exports, "compactHeap", CompactHeap);
  NODE_SET_METHOD(exports, "releaseFreeMemory", ReleaseFreeMemory);
}
