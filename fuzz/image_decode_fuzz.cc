// The server's request-image entry: CheckImage (signature, end marker, header
// and the pixel limits) and, for what it passes, DecodePixels at the model's
// input size, with the server's default limits.

#include "fuzz_util.h"
#include "serve/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = detops::fuzz::AsText(data, size);
  const detops::serve::DecodeLimits limits;
  auto img = detops::serve::CheckImage(bytes, limits);
  if (!img.ok()) return 0;
  if (img->width <= 0 || img->height <= 0 ||
      static_cast<int64_t>(img->width) * img->height > limits.max_pixels) {
    __builtin_trap();  // CheckImage passed what its limits refuse
  }
  if (detops::serve::DecodePixels(bytes, 640, *img).ok()) {
    if (img->bgr.empty() || img->bgr.type() != CV_8UC3) __builtin_trap();
  }
  return 0;
}
