// Writes a synthetic dataset in the Ultralytics YOLO layout.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/parallel.h"
#include "data/synth.h"
#include "data/synth_internal.h"

namespace detops {
namespace fs = std::filesystem;

namespace {

Status CheckOptions(const SynthOptions& o) {
  if (o.n < 0) return Status::InvalidInput("synth: n must be >= 0, got " + std::to_string(o.n));
  if (o.width < 32 || o.height < 32 || o.width > 8192 || o.height > 8192) {
    return Status::InvalidInput("synth: image size must be 32..8192, got " +
                                std::to_string(o.width) + "x" + std::to_string(o.height));
  }
  if (!(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction <= 1)) {
    return Status::InvalidInput(
        "synth: val_fraction and test_fraction must be >= 0 and sum to <= 1");
  }
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100) {
    return Status::InvalidInput("synth: jpeg_quality must be 1..100, got " +
                                std::to_string(o.jpeg_quality));
  }
  if (o.threads < 1) {
    return Status::InvalidInput("synth: threads must be >= 1, got " + std::to_string(o.threads));
  }
  return Status::Ok();
}

Status PrepareOutput(const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) {
      return Status::InvalidInput(out.string() + ": exists and is not a directory");
    }
    if (!fs::is_empty(out, ec)) {
      return Status::InvalidInput(out.string() + ": output directory is not empty");
    }
  }
  for (Split s : kAllSplits) {
    for (const char* top : {"images", "labels"}) {
      fs::create_directories(out / top / SplitName(s), ec);
      if (ec) return Status::IOError((out / top).string() + ": cannot create: " + ec.message());
    }
  }
  return Status::Ok();
}

std::string LabelText(const std::vector<Box>& boxes) {
  std::string text;
  char line[96];
  for (const Box& b : boxes) {
    std::snprintf(line, sizeof(line), "%d %.6f %.6f %.6f %.6f\n", b.class_id, (b.x1 + b.x2) / 2,
                  (b.y1 + b.y2) / 2, b.x2 - b.x1, b.y2 - b.y1);
    text += line;
  }
  return text;
}

std::string DataYaml(const SynthOptions& o) {
  std::string names;
  for (const std::string& c : SceneClasses(o.kind)) {
    names += (names.empty() ? "" : ", ") + ("'" + c + "'");
  }
  return "# detops synthetic " + std::string(SceneKindName(o.kind)) + " damage: seed " +
         std::to_string(o.seed) + ", lighting " + LightingName(o.lighting) + ", " +
         std::to_string(o.n) + " images of " + std::to_string(o.width) + "x" +
         std::to_string(o.height) + "\n" +
         "path: .\n"
         "train: images/train\n"
         "val: images/val\n"
         "test: images/test\n"
         "nc: " +
         std::to_string(SceneClasses(o.kind).size()) + "\nnames: [" + names + "]\n";
}

// Temp file + rename, like WriteFileAtomic but without fsync: a killed run
// leaves no partial file under the final name (only, at worst, a *.tmp.*
// file), and skipping two fsyncs per image makes large sets several times
// faster. data.yaml, written last, does get WriteFileAtomic's fsync.
Status WriteNoSync(const fs::path& path, std::string_view bytes) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) return Status::IOError(tmp.string() + ": write failed: " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status::IOError(path.string() + ": rename failed: " + ec.message());
  }
  return Status::Ok();
}

Status WriteOne(const SynthOptions& o, const fs::path& out, int index) {
  SynthScene scene;
  std::vector<uchar> jpeg;
  try {
    scene = RenderScene(o.kind, o.seed, index, o.lighting, o.width, o.height);
    if (!cv::imencode(".jpg", scene.image, jpeg, {cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality})) {
      return Status::Internal("synth: JPEG encoding failed for image " + std::to_string(index));
    }
  } catch (const cv::Exception& e) {
    return Status::Internal("synth: rendering image " + std::to_string(index) + ": " + e.what());
  }
  const std::string stem = SynthStem(o.kind, index);
  const char* split = SplitName(SynthSplit(o, index));
  RETURN_IF_ERROR(
      WriteNoSync(out / "images" / split / (stem + ".jpg"),
                  std::string_view(reinterpret_cast<const char*>(jpeg.data()), jpeg.size())));
  return WriteNoSync(out / "labels" / split / (stem + ".txt"), LabelText(scene.boxes));
}

}  // namespace

Split SynthSplit(const SynthOptions& options, int index) {
  // A Weyl sequence: any run of consecutive indices is spread evenly over
  // [0,1), so the split sizes stay within a few images of the fractions.
  const double offset =
      static_cast<double>(synth::Mix64(options.seed ^ 0x73706c6974ULL) >> 11) * 0x1.0p-53;
  const double u = std::fmod(index * 0.6180339887498949 + offset, 1.0);
  if (u < options.val_fraction) return Split::kVal;
  if (u < options.val_fraction + options.test_fraction) return Split::kTest;
  return Split::kTrain;
}

std::string SynthStem(SceneKind kind, int index) {
  char digits[16];
  std::snprintf(digits, sizeof(digits), "%05d", index);
  return std::string(SceneKindName(kind)) + "_" + digits;
}

Status WriteSynthDataset(const SynthOptions& options, const fs::path& out) {
  RETURN_IF_ERROR(CheckOptions(options));
  RETURN_IF_ERROR(PrepareOutput(out));

  ParallelForOptions parallel;
  parallel.threads = std::max(1, options.threads);
  if (options.progress) {
    parallel.progress = [&](size_t done, size_t total) {
      options.progress(static_cast<int>(done), static_cast<int>(total));
    };
  }
  RETURN_IF_ERROR(ParallelFor(
      static_cast<size_t>(options.n),
      [&](size_t i) { return WriteOne(options, out, static_cast<int>(i)); }, parallel));
  // Last, so that a dataset with a data.yaml is complete.
  return WriteFileAtomic(out / "data.yaml", DataYaml(options));
}

}  // namespace detops
