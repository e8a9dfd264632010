// The image header probe the importer and the profiler run on every file of
// a user's dataset (format and displayed size without decoding pixels; other
// formats fall back to OpenCV's decoder).

#include "data/image_header.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = detops::ProbeImageHeader(detops::fuzz::AsText(data, size), "input");
  if (h.ok() && (h->width <= 0 || h->height <= 0)) __builtin_trap();  // sizes are positive
  return 0;
}
