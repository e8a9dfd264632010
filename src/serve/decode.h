#pragma once
// Request images: from the bytes a client sent to an 8-bit BGR image the
// model can take, guarded against what a public endpoint receives (empty
// bodies, other formats, truncated data, decompression bombs). Internal to
// serve. Thread-safe.

#include <opencv2/core.hpp>
#include <string>
#include <string_view>

#include "core/core.h"

namespace detops::serve {

struct DecodeLimits {
  int64_t max_pixels = 40'000'000;  // width x height, read from the header before decoding
  int max_side = 16384;
};

struct DecodedImage {
  cv::Mat bgr;         // what the model gets (maybe reduced)
  std::string format;  // "jpeg", "png", "webp"
  int width = 0;       // the displayed size of the original (EXIF applied)
  int height = 0;
  double scale = 1;  // original pixels per pixel of `bgr`
};

// A request image in two steps, so that a server can refuse bad bodies
// before they queue and decode the rest wherever it likes.
//
// CheckImage reads the signature, the end marker and the header (format,
// width, height; `bgr` stays empty) and applies the limits; cheap.
// InvalidInput names the reason: "empty body", "not a JPEG, PNG or WebP
// image", "truncated jpeg data", "image is 50000x50000 pixels; the limit is
// 40000000 ...".
Result<DecodedImage> CheckImage(std::string_view bytes, const DecodeLimits& limits);

// Decodes the pixels of an image CheckImage passed (`out` is its result). A
// JPEG at least twice the model's input size (`target`, the letterbox side)
// is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself, never below
// `target` on its long side: the network sees the same letterboxed pixels
// for a fraction of the decode time. InvalidInput "undecodable png data"
// for data that is corrupt past its header.
Status DecodePixels(std::string_view bytes, int target, DecodedImage& out);

// Whether a Content-Type names an image body the server takes:
// image/jpeg, image/png, image/webp or application/octet-stream
// (parameters ignored, case-insensitive).
bool IsImageMediaType(std::string_view content_type);

}  // namespace detops::serve
