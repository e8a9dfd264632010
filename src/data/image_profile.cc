#include "data/image_profile.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/parallel.h"

namespace detops {
namespace {

// Statistics are measured with the short side reduced to at least this.
constexpr int kMinShortSide = 128;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
}

bool StartsWith(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

std::string DetectFormat(std::span<const uint8_t> b) {
  if (StartsWith(b, "\xFF\xD8\xFF")) return "jpeg";
  if (StartsWith(b, "\x89PNG\r\n\x1A\n")) return "png";
  if (StartsWith(b, "BM")) return "bmp";
  if (StartsWith(b, "RIFF") && StartsWith(b, "WEBP", 8)) return "webp";
  if (StartsWith(b, std::string_view("II*\0", 4)) || StartsWith(b, std::string_view("MM\0*", 4))) {
    return "tiff";
  }
  if (StartsWith(b, "GIF8")) return "gif";
  return "";
}

// What the container header says; `error` set when the file is cut short or
// malformed.
struct HeaderInfo {
  std::string error;
  int width = 0, height = 0;  // as stored (before orientation)
  int channels = 0, bit_depth = 0;
  int orientation = 1;  // EXIF orientation 1..8
};

// Reads the orientation tag (0x0112) of IFD0 from an APP1 "Exif" payload.
int ExifOrientation(const uint8_t* p, size_t n) {
  if (n < 6 + 8 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = p + 6;
  size_t tn = n - 6;
  bool le = t[0] == 'I' && t[1] == 'I';
  auto u16 = [&](size_t o) { return le ? uint16_t(t[o] | t[o + 1] << 8) : Be16(t + o); };
  auto u32 = [&](size_t o) { return le ? Le32(t + o) : Be32(t + o); };
  size_t ifd = u32(4);
  if (ifd + 2 > tn) return 1;
  int count = u16(ifd);
  for (int i = 0; i < count; ++i) {
    size_t e = ifd + 2 + 12 * static_cast<size_t>(i);
    if (e + 12 > tn) return 1;
    if (u16(e) == 0x0112) {
      int v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

// Walks the JPEG markers up to EOI, skipping entropy-coded data, so that a
// file cut anywhere before its end (or trailing data after EOI) is judged
// the way a decoder would see it.
HeaderInfo ParseJpeg(std::span<const uint8_t> b) {
  HeaderInfo h;
  const uint8_t* d = b.data();
  size_t n = b.size(), pos = 2;
  while (true) {
    while (pos < n && d[pos] != 0xFF) ++pos;          // tolerate stray bytes
    while (pos + 1 < n && d[pos + 1] == 0xFF) ++pos;  // fill bytes
    if (pos + 1 >= n) break;
    uint8_t m = d[pos + 1];
    if (m == 0xD9) {
      if (h.width == 0) h.error = "corrupt JPEG (no frame header)";
      return h;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      pos += 2;
      continue;
    }
    if (pos + 4 > n) break;
    size_t len = Be16(d + pos + 2);
    if (len < 2) {
      h.error = "corrupt JPEG (bad segment length at byte " + std::to_string(pos) + ")";
      return h;
    }
    if (pos + 2 + len > n) break;
    const uint8_t* seg = d + pos + 4;
    size_t seg_len = len - 2;
    if (m == 0xE1 && h.orientation == 1) h.orientation = ExifOrientation(seg, seg_len);
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && seg_len >= 6) {
      h.bit_depth = seg[0];
      h.height = Be16(seg + 1);
      h.width = Be16(seg + 3);
      h.channels = seg[5];
    }
    pos += 2 + len;
    if (m == 0xDA) {  // start of scan: skip entropy-coded data to the next real marker
      while (true) {
        const void* ff = std::memchr(d + pos, 0xFF, n - pos);
        if (!ff) {
          pos = n;
          break;
        }
        pos = static_cast<const uint8_t*>(ff) - d;
        if (pos + 1 >= n) break;
        uint8_t next = d[pos + 1];
        if (next != 0x00 && !(next >= 0xD0 && next <= 0xD7) && next != 0xFF) break;
        pos += next == 0xFF ? 1 : 2;
      }
    }
  }
  h.error = "truncated JPEG (no EOI marker)";
  return h;
}

HeaderInfo ParsePng(std::span<const uint8_t> b) {
  HeaderInfo h;
  const uint8_t* d = b.data();
  size_t n = b.size(), pos = 8;
  while (pos + 8 <= n) {
    size_t len = Be32(d + pos);
    std::string_view type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (len > 0x7FFFFFFF) {
      h.error = "corrupt PNG (bad chunk length at byte " + std::to_string(pos) + ")";
      return h;
    }
    if (type == "IHDR" && len >= 13 && pos + 8 + 13 <= n) {
      h.width = static_cast<int>(Be32(d + pos + 8));
      h.height = static_cast<int>(Be32(d + pos + 12));
      h.bit_depth = d[pos + 16];
      static constexpr int kChannelsByColorType[7] = {1, 0, 3, 3, 2, 0, 4};
      uint8_t color_type = d[pos + 17];
      h.channels = color_type < 7 ? kChannelsByColorType[color_type] : 0;
    }
    if (type == "IEND") return h;
    pos += 12 + len;
  }
  h.error = "truncated PNG (no IEND chunk)";
  return h;
}

HeaderInfo ParseHeader(const std::string& format, std::span<const uint8_t> b) {
  if (format == "jpeg") return ParseJpeg(b);
  if (format == "png") return ParsePng(b);
  HeaderInfo h;
  if (format == "bmp" && b.size() >= 6) {
    uint32_t declared = Le32(b.data() + 2);
    if (declared > b.size() && declared < (1u << 31)) {
      h.error = "truncated BMP (" + std::to_string(b.size()) + " of " + std::to_string(declared) +
                " bytes)";
    }
  }
  return h;
}

// Largest of 1, 2, 4, 8 that keeps the short side >= kMinShortSide.
int ReductionFor(int width, int height) {
  int short_side = std::min(width, height);
  int s = 8;
  while (s > 1 && short_side / s < kMinShortSide) s /= 2;
  return s;
}

// Any depth/channel layout to 8-bit BGR.
cv::Mat ToBgr8(const cv::Mat& in) {
  cv::Mat m = in;
  if (m.depth() != CV_8U) {
    cv::Mat c;
    double scale = m.depth() == CV_16U   ? 1.0 / 257.0
                   : m.depth() == CV_8S  ? 1.0
                   : m.depth() == CV_16S ? 1.0 / 128.0
                                         : 255.0;  // float: assume 0..1
    m.convertTo(c, CV_8U, scale);
    m = c;
  }
  cv::Mat out;
  switch (m.channels()) {
    case 1:
      cv::cvtColor(m, out, cv::COLOR_GRAY2BGR);
      return out;
    case 4:
      cv::cvtColor(m, out, cv::COLOR_BGRA2BGR);
      return out;
    default:
      return m;
  }
}

uint64_t DifferenceHash(const cv::Mat& gray) {
  cv::Mat small;
  cv::resize(gray, small, cv::Size(9, 8), 0, 0, cv::INTER_AREA);
  uint64_t hash = 0;
  for (int r = 0; r < 8; ++r) {
    const uint8_t* row = small.ptr<uint8_t>(r);
    for (int c = 0; c < 8; ++c) hash = hash << 1 | (row[c] < row[c + 1] ? 1u : 0u);
  }
  return hash;
}

std::vector<uint8_t> Thumbnail(const cv::Mat& gray) {
  cv::Mat small;
  cv::resize(gray, small, cv::Size(kThumbSide, kThumbSide), 0, 0, cv::INTER_AREA);
  std::vector<uint8_t> out;
  out.reserve(kThumbSide * kThumbSide);
  for (int r = 0; r < kThumbSide; ++r) {
    const uint8_t* row = small.ptr<uint8_t>(r);
    out.insert(out.end(), row, row + kThumbSide);
  }
  return out;
}

void Measure(const cv::Mat& bgr, ImageProfile& p) {
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, sd;
  cv::meanStdDev(gray, mean, sd);
  p.brightness = mean[0];
  p.contrast = sd[0];
  cv::Mat lap;
  cv::Laplacian(gray, lap, CV_16S);
  cv::meanStdDev(lap, mean, sd);
  p.sharpness = sd[0] * sd[0];
  cv::Scalar bgr_mean = cv::mean(bgr);
  p.mean_b = bgr_mean[0];
  p.mean_g = bgr_mean[1];
  p.mean_r = bgr_mean[2];
  p.dhash = DifferenceHash(gray);
  p.thumb = Thumbnail(gray);
}

ImageProfile Fail(ImageProfile p, std::string error) {
  p.decodes = false;
  p.error = std::move(error);
  return p;
}

ImageProfile ProfileUnchecked(std::span<const uint8_t> bytes) {
  ImageProfile p;
  if (bytes.empty()) return Fail(p, "empty file");
  p.format = DetectFormat(bytes);
  if (p.format.empty()) return Fail(p, "not an image (unknown file signature)");
  if (p.format == "gif") return Fail(p, "unsupported format gif");
  HeaderInfo h = ParseHeader(p.format, bytes);
  if (!h.error.empty()) return Fail(p, h.error);

  // imdecode wants a Mat header; it does not modify the buffer.
  cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
  cv::Mat img;
  if (p.format == "jpeg" && h.width > 0 && h.height > 0) {
    static constexpr int kFlags[] = {cv::IMREAD_COLOR, cv::IMREAD_REDUCED_COLOR_2,
                                     cv::IMREAD_REDUCED_COLOR_4, cv::IMREAD_REDUCED_COLOR_8};
    int s = ReductionFor(h.width, h.height);
    img = cv::imdecode(buf, kFlags[std::countr_zero(static_cast<unsigned>(s))]);
    bool swap = h.orientation >= 5;  // 5..8 transpose the image
    p.width = swap ? h.height : h.width;
    p.height = swap ? h.width : h.height;
  } else {
    img = cv::imdecode(buf, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
    p.width = img.cols;
    p.height = img.rows;
  }
  if (img.empty()) return Fail(p, "OpenCV could not decode the " + p.format + " data");
  p.channels = h.channels > 0 ? h.channels : img.channels();
  p.bit_depth = h.bit_depth > 0         ? h.bit_depth
                : img.depth() <= CV_8S  ? 8
                : img.depth() <= CV_16S ? 16
                : img.depth() == CV_64F ? 64
                                        : 32;
  cv::Mat bgr = ToBgr8(img);
  if (p.format != "jpeg") {
    int s = ReductionFor(bgr.cols, bgr.rows);
    if (s > 1) {
      cv::Mat small;
      cv::resize(bgr, small, cv::Size((bgr.cols + s - 1) / s, (bgr.rows + s - 1) / s), 0, 0,
                 cv::INTER_AREA);
      bgr = small;
    }
  }
  Measure(bgr, p);
  p.decodes = true;
  return p;
}

}  // namespace

ImageProfile ProfileImageBytes(std::span<const uint8_t> bytes) {
  try {
    return ProfileUnchecked(bytes);
  } catch (const cv::Exception& e) {
    return Fail(ImageProfile{}, std::string("OpenCV error: ") + e.what());
  } catch (const std::exception& e) {
    return Fail(ImageProfile{}, std::string("error while decoding: ") + e.what());
  }
}

ImageProfile ProfileDecodedImage(const cv::Mat& bgr) {
  ImageProfile p;
  p.width = bgr.cols;
  p.height = bgr.rows;
  if (bgr.empty() || bgr.type() != CV_8UC3) return Fail(p, "not an 8-bit BGR image");
  int s = ReductionFor(bgr.cols, bgr.rows);
  if (s > 1) {
    cv::Mat small;
    cv::resize(bgr, small, cv::Size((bgr.cols + s - 1) / s, (bgr.rows + s - 1) / s), 0, 0,
               cv::INTER_AREA);
    Measure(small, p);
  } else {
    Measure(bgr, p);
  }
  p.decodes = true;
  return p;
}

ImageProfile ProfileImageFile(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Fail(ImageProfile{}, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (!ec) bytes.reserve(size);
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return Fail(ImageProfile{}, "read error");
  return ProfileImageBytes(bytes);
}

std::vector<ImageProfile> ProfileImageFiles(const std::vector<std::filesystem::path>& paths,
                                            int threads,
                                            std::function<void(size_t, size_t)> progress) {
  std::vector<ImageProfile> out(paths.size());
  ParallelForOptions parallel;
  parallel.threads = threads;
  parallel.progress = std::move(progress);
  Status ignored = ParallelFor(
      paths.size(),
      [&](size_t i) {
        out[i] = ProfileImageFile(paths[i]);
        return Status::Ok();
      },
      parallel);
  (void)ignored;  // every item succeeds: failures are in the profiles
  return out;
}

int HammingDistance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

double ThumbCorrelation(const ImageProfile& a, const ImageProfile& b) {
  const size_t n = static_cast<size_t>(kThumbSide) * kThumbSide;
  if (a.thumb.size() != n || b.thumb.size() != n) return std::nan("");
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (size_t i = 0; i < n; ++i) {
    double x = a.thumb[i], y = b.thumb[i];
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
  // Below one grey level of standard deviation a thumbnail is flat.
  if (va < n || vb < n) return std::nan("");
  return (sab - sa * sb / n) / std::sqrt(va * vb);
}

}  // namespace detops
