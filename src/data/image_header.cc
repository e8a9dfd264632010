#include "data/image_header.h"

#include <opencv2/imgcodecs.hpp>

#include <cstdint>
#include <cstring>

namespace detops {
namespace {

uint32_t Be16(const unsigned char* p) { return (p[0] << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) { return (Be16(p) << 16) | Be16(p + 2); }
uint32_t Le16(const unsigned char* p) { return p[0] | (p[1] << 8); }
uint32_t Le32(const unsigned char* p) { return Le16(p) | (Le16(p + 2) << 16); }

// Orientation tag (0x0112) of an APP1 Exif payload, 1 when absent.
int ExifOrientation(const unsigned char* p, size_t n) {
  if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const unsigned char* tiff = p + 6;
  size_t len = n - 6;
  bool le = tiff[0] == 'I' && tiff[1] == 'I';
  if (!le && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  auto u16 = [&](size_t off) { return le ? Le16(tiff + off) : Be16(tiff + off); };
  auto u32 = [&](size_t off) { return le ? Le32(tiff + off) : Be32(tiff + off); };
  size_t ifd = u32(4);
  if (ifd + 2 > len) return 1;
  size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    size_t e = ifd + 2 + i * 12;
    if (e + 12 > len) break;
    if (u16(e) == 0x0112) {
      int v = static_cast<int>(u16(e + 8));
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

Result<ImageHeader> ProbeJpeg(const unsigned char* p, size_t n, const std::string& what) {
  ImageHeader h;
  h.format = "jpeg";
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return Status::InvalidInput(what + ": corrupt JPEG (bad marker)");
    unsigned marker = p[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += 2;
      continue;
    }
    size_t seg = Be16(p + i + 2);
    if (seg < 2 || i + 2 + seg > n) break;
    const unsigned char* body = p + i + 4;
    if (marker == 0xE1) h.exif_orientation = ExifOrientation(body, seg - 2);
    bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (seg < 7) break;
      int height = static_cast<int>(Be16(body + 1));
      int width = static_cast<int>(Be16(body + 3));
      if (width <= 0 || height <= 0) {
        return Status::InvalidInput(what + ": JPEG declares a zero size");
      }
      bool swap = h.exif_orientation >= 5;
      h.width = swap ? height : width;
      h.height = swap ? width : height;
      return h;
    }
    if (marker == 0xDA) break;  // start of scan before any frame header
    i += 2 + seg;
  }
  return Status::InvalidInput(what + ": corrupt or truncated JPEG (no frame header)");
}

}  // namespace

Result<ImageHeader> ProbeImageHeader(std::string_view bytes, const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  if (n == 0) return Status::InvalidInput(what + ": empty file");
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ProbeJpeg(p, n, what);
  ImageHeader h;
  if (n >= 24 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 &&
      std::memcmp(p + 12, "IHDR", 4) == 0) {
    h.format = "png";
    h.width = static_cast<int>(Be32(p + 16));
    h.height = static_cast<int>(Be32(p + 20));
  } else if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
    h.format = "bmp";
    h.width = static_cast<int>(Le32(p + 18));
    // Negative for top-down rows; INT32_MIN has no int magnitude (0 refuses it).
    const int32_t rows = static_cast<int32_t>(Le32(p + 22));
    h.height = rows == INT32_MIN ? 0 : std::abs(rows);
  } else if (n >= 30 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0) {
    h.format = "webp";
    if (std::memcmp(p + 12, "VP8 ", 4) == 0) {
      h.width = static_cast<int>(Le16(p + 26) & 0x3FFF);
      h.height = static_cast<int>(Le16(p + 28) & 0x3FFF);
    } else if (std::memcmp(p + 12, "VP8L", 4) == 0 && n >= 25) {
      uint32_t b = Le32(p + 21);
      h.width = static_cast<int>((b & 0x3FFF) + 1);
      h.height = static_cast<int>(((b >> 14) & 0x3FFF) + 1);
    } else if (std::memcmp(p + 12, "VP8X", 4) == 0) {
      h.width = static_cast<int>((p[24] | (p[25] << 8) | (p[26] << 16)) + 1);
      h.height = static_cast<int>((p[27] | (p[28] << 8) | (p[29] << 16)) + 1);
    }
  } else if (n >= 10 && (std::memcmp(p, "GIF87a", 6) == 0 || std::memcmp(p, "GIF89a", 6) == 0)) {
    h.format = "gif";
    h.width = static_cast<int>(Le16(p + 6));
    h.height = static_cast<int>(Le16(p + 8));
  } else {
    // TIFF and the rest: let OpenCV decode it.
    try {
      std::vector<unsigned char> buf(p, p + n);
      cv::Mat m = cv::imdecode(buf, cv::IMREAD_COLOR);
      if (m.empty()) return Status::InvalidInput(what + ": not a readable image");
      h.format = (p[0] == 'I' || p[0] == 'M') ? "tiff" : "other";
      h.width = m.cols;
      h.height = m.rows;
    } catch (const cv::Exception& e) {
      return Status::InvalidInput(what + ": not a readable image: " + e.what());
    }
  }
  if (h.width <= 0 || h.height <= 0) {
    return Status::InvalidInput(what + ": " + h.format + " header declares a zero size");
  }
  return h;
}

}  // namespace detops
