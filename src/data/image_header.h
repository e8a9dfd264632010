#pragma once
// Reads an image's format and displayed size from its header bytes, without
// decoding pixels: JPEG (SOF + EXIF orientation), PNG, BMP, WebP, GIF; other
// formats fall back to a full decode. Thread-safe.

#include <string>
#include <string_view>

#include "core/core.h"

namespace detops {

struct ImageHeader {
  std::string format;  // "jpeg", "png", "bmp", "webp", "gif", "tiff"
  int width = 0;       // displayed size: EXIF orientations 5-8 swap the stored axes
  int height = 0;
  int exif_orientation = 1;  // 1..8 (JPEG only; 1 when absent)
};

// InvalidInput naming `what` when the bytes are not a readable image header.
Result<ImageHeader> ProbeImageHeader(std::string_view bytes, const std::string& what);

}  // namespace detops
