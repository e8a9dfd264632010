#include "serve/decode.h"

#include <algorithm>
#include <cctype>
#include <opencv2/imgcodecs.hpp>

#include "data/image_header.h"

namespace detops::serve {

bool IsImageMediaType(std::string_view content_type) {
  std::string t(content_type.substr(0, content_type.find(';')));
  t.erase(std::remove_if(t.begin(), t.end(), [](unsigned char c) { return std::isspace(c); }),
          t.end());
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t == "image/jpeg" || t == "image/jpg" || t == "image/png" || t == "image/webp" ||
         t == "application/octet-stream";
}

namespace {

// The format by its signature; "" for anything else (never decoded).
std::string Sniff(std::string_view b) {
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") return "jpeg";
  if (b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1A\n") return "png";
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "webp";
  return "";
}

// OpenCV fills the missing part of a truncated JPEG or PNG with grey and
// reports success; the end markers tell.
bool LooksTruncated(std::string_view b, const std::string& format) {
  std::string_view tail = b.substr(b.size() > 64 ? b.size() - 64 : 0);
  if (format == "jpeg") return tail.find("\xFF\xD9") == std::string_view::npos;
  if (format == "png") return tail.find("IEND") == std::string_view::npos;
  return false;
}

}  // namespace

Result<DecodedImage> CheckImage(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return Status::InvalidInput("empty body: send the image's bytes");
  const std::string sniffed = Sniff(bytes);
  if (sniffed.empty()) {
    return Status::InvalidInput("not a JPEG, PNG or WebP image (unknown signature)");
  }
  if (LooksTruncated(bytes, sniffed)) {
    return Status::InvalidInput("truncated " + sniffed + " data (no end marker)");
  }
  // The header first: the pixel count is known before a byte is decoded.
  auto header = ProbeImageHeader(bytes, "the image");
  if (!header.ok()) return Status::InvalidInput(header.status().message());
  DecodedImage out;
  out.format = header->format;
  if (out.format != "jpeg" && out.format != "png" && out.format != "webp") {
    return Status::InvalidInput("not a JPEG, PNG or WebP image (found " + out.format + ")");
  }
  out.width = header->width;
  out.height = header->height;
  if (out.width <= 0 || out.height <= 0) {
    return Status::InvalidInput("the image header gives a zero size (" + std::to_string(out.width) +
                                "x" + std::to_string(out.height) + ")");
  }
  if (static_cast<int64_t>(out.width) * out.height > limits.max_pixels ||
      std::max(out.width, out.height) > limits.max_side) {
    return Status::InvalidInput("image is " + std::to_string(out.width) + "x" +
                                std::to_string(out.height) + " pixels; the limit is " +
                                std::to_string(limits.max_pixels) + " pixels and " +
                                std::to_string(limits.max_side) + " per side");
  }
  return out;
}

Status DecodePixels(std::string_view bytes, int target, DecodedImage& out) {
  int flags = cv::IMREAD_COLOR;
  int reduce = 1;
  if (out.format == "jpeg" && target > 0) {
    const int longest = std::max(out.width, out.height);
    const int shortest = std::min(out.width, out.height);
    // Not below the scale image profiles are measured at (short side >= 128,
    // data/image_profile.h): the monitor compares this request's sharpness
    // with the reference's, and a tiny model's 1/8 decode would differ.
    while (reduce < 8 && longest / (reduce * 2) >= target && shortest / (reduce * 2) >= 128) {
      reduce *= 2;
    }
    flags = reduce == 8   ? cv::IMREAD_REDUCED_COLOR_8
            : reduce == 4 ? cv::IMREAD_REDUCED_COLOR_4
            : reduce == 2 ? cv::IMREAD_REDUCED_COLOR_2
                          : cv::IMREAD_COLOR;
  }
  try {
    cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U,
                const_cast<char*>(bytes.data()));  // imdecode only reads it
    out.bgr = cv::imdecode(buf, flags);
  } catch (const cv::Exception& e) {
    return Status::InvalidInput("undecodable " + out.format + " data (" + e.err + ")");
  }
  if (out.bgr.empty()) return Status::InvalidInput("undecodable " + out.format + " data");
  if (out.bgr.type() != CV_8UC3) {
    return Status::InvalidInput("decoded to an unexpected pixel type");
  }
  out.scale =
      static_cast<double>(std::max(out.width, out.height)) / std::max(out.bgr.cols, out.bgr.rows);
  return Status::Ok();
}

}  // namespace detops::serve
