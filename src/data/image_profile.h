#pragma once
// Image profiles: decodes an image file once, cheaply, and measures what the
// validation suite needs (decodability, size, exposure, sharpness, colour and
// a perceptual hash for near-duplicate search).
//
// Speed: JPEGs are decoded at reduced scale (libjpeg DCT scaling by 1/2, 1/4
// or 1/8, chosen from the header so that the short side stays >= 128 px);
// other formats are decoded fully and then shrunk by the same rule, so the
// statistics below are measured at a comparable scale (short side in
// [128, 256) for images up to ~2000 px, reduced by at most 8 beyond).
//
// EXIF orientation: width/height are the displayed size. OpenCV applies the
// EXIF orientation for IMREAD_COLOR and for the IMREAD_REDUCED_COLOR_* flags
// (both through imdecode); the JPEG header's orientation tag is read to turn
// the stored size into the displayed one (tested in image_profile_test).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <opencv2/core.hpp>
#include <span>
#include <string>
#include <vector>

namespace detops {

struct ImageProfile {
  bool decodes = false;
  // Why it does not decode, e.g. "truncated JPEG (no EOI marker)", "empty
  // file", "not an image (unknown file signature)". Empty when it decodes.
  std::string error;
  // "jpeg", "png", "bmp", "webp", "tiff", "gif"; empty when unknown.
  std::string format;
  int width = 0;  // displayed size, EXIF orientation applied
  int height = 0;
  int channels = 0;       // as stored: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha
  int bit_depth = 8;      // bits per sample as stored (8, 16, 12 for 12-bit JPEG, ...)
  double brightness = 0;  // mean luma, 0..255
  double contrast = 0;    // standard deviation of luma
  // Variance of the Laplacian of the luma at the reduced scale; only
  // comparable between profiles, low values mean blurry.
  double sharpness = 0;
  double mean_b = 0, mean_g = 0, mean_r = 0;  // 0..255
  // 64-bit difference hash of the luma (9x8 area-resized, one bit per
  // horizontally adjacent pair). Near-duplicates are within a small Hamming
  // distance (<= 4 of 64 is the usual threshold).
  uint64_t dhash = 0;
  // kThumbSide x kThumbSide luma thumbnail (area-resized, row-major), the
  // finer look that confirms a near-duplicate found by dhash. Empty when the
  // image does not decode, or in a profile cached before it existed.
  std::vector<uint8_t> thumb;
};

inline constexpr int kThumbSide = 16;

// Decodes and measures one image file. Never throws; a file that cannot be
// read or decoded gives a profile with decodes=false and `error` set (the
// error names the reason but not the path: callers know the path). Detects
// truncation that OpenCV hides (a JPEG without its EOI marker decodes to a
// grey-filled image; a PNG without IEND). Thread-safe.
ImageProfile ProfileImageFile(const std::filesystem::path& path);

// The same for an image already in memory (e.g. a blob just hashed).
ImageProfile ProfileImageBytes(std::span<const uint8_t> bytes);

// The same measurements for an image already decoded (8-bit BGR), shrunk
// by the same rule first, so that they compare with profiles of files (the
// server profiles the images it predicts on). format, channels, bit_depth
// and error stay at their defaults; decodes is true.
ImageProfile ProfileDecodedImage(const cv::Mat& bgr);

// Profiles `paths` on `threads` worker threads (<= 0: one per hardware
// thread, capped by the number of paths). Results are in input order.
// `progress`, when set, is called after each image with the number done so
// far; calls come from the worker threads but never concurrently.
std::vector<ImageProfile> ProfileImageFiles(
    const std::vector<std::filesystem::path>& paths, int threads,
    std::function<void(size_t done, size_t total)> progress = {});

// Number of differing bits.
int HammingDistance(uint64_t a, uint64_t b);

// Pearson correlation of two profiles' thumbnails, in [-1, 1]: near 1 for
// the same scene resized, re-encoded or shifted in brightness or contrast
// (the correlation ignores gain and offset). NaN when either thumbnail is
// missing or flat (no variation to correlate).
double ThumbCorrelation(const ImageProfile& a, const ImageProfile& b);

}  // namespace detops
