// Predict: a model on image files and folders; JSON detections and
// annotated copies.

#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pipeline/jobs_internal.h"

namespace detops {
namespace fs = std::filesystem;
void DrawDetections(cv::Mat& img, const std::vector<Detection>& dets) {
  static const cv::Scalar kColours[] = {{0, 200, 255}, {255, 80, 80}, {80, 255, 80},
                                        {255, 0, 255}, {0, 255, 255}, {255, 255, 0}};
  int thick = std::max(1, std::min(img.cols, img.rows) / 300);
  for (const Detection& d : dets) {
    cv::Scalar c = kColours[d.class_id % 6];
    cv::rectangle(img, {int(d.x1), int(d.y1)}, {int(d.x2), int(d.y2)}, c, thick);
    char label[96];
    std::snprintf(label, sizeof label, "%s %.2f", d.class_name.c_str(), d.score);
    int base = 0;
    cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &base);
    int y = std::max(int(d.y1), ts.height + 4);
    cv::rectangle(img, {int(d.x1), y - ts.height - 4}, {int(d.x1) + ts.width + 4, y}, c,
                  cv::FILLED);
    cv::putText(img, label, {int(d.x1) + 2, y - 3}, cv::FONT_HERSHEY_SIMPLEX, 0.45, {0, 0, 0}, 1,
                cv::LINE_AA);
  }
}

Json PredictionsToJson(const std::vector<ImagePrediction>& predictions) {
  Json out = Json::array();
  for (const ImagePrediction& p : predictions) {
    Json dets = Json::array();
    for (const Detection& d : p.detections) {
      dets.push_back({{"class", d.class_name},
                      {"class_id", d.class_id},
                      {"score", d.score},
                      {"box", {d.x1, d.y1, d.x2, d.y2}}});
    }
    Json j = {{"file", p.file},
              {"width", p.width},
              {"height", p.height},
              {"detections", dets},
              {"ms", p.ms}};
    if (!p.error.empty()) j["error"] = p.error;
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<ImagePrediction>> RunPredictJob(Workspace& ws, const PredictJobOptions& o) {
  ASSIGN_OR_RETURN(fs::path weights, ResolveWeights(ws, o.model));
  ASSIGN_OR_RETURN(auto detector, Detector::Load(weights, {o.device, o.threads, o.precision}));
  std::vector<fs::path> files;
  std::error_code ec;
  for (const std::string& in : o.inputs) {
    if (fs::is_directory(in, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(in, ec)) {
        if (e.is_regular_file(ec) && IsImageExtension(e.path())) found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.emplace_back(in);
    }
  }
  if (files.empty()) return Status::InvalidInput("no images given (files or folders of images)");
  if (!o.out.empty()) {
    fs::create_directories(o.out, ec);
    if (ec) return Status::IOError(o.out + ": cannot create: " + ec.message());
  }
  std::vector<ImagePrediction> out;
  for (const fs::path& f : files) {
    ImagePrediction p;
    p.file = f.string();
    auto img = LoadImageForModel(f);
    if (!img.ok()) {
      p.error = img.status().message();
      out.push_back(std::move(p));
      continue;
    }
    p.width = img->cols;
    p.height = img->rows;
    auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(auto dets, detector->Predict({*img}, o.predict));
    p.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    p.detections = dets[0];
    if (!o.out.empty()) {
      DrawDetections(*img, p.detections);
      fs::path dst = fs::path(o.out) / f.filename();
      dst.replace_extension(".jpg");
      cv::imwrite(dst.string(), *img);
    }
    out.push_back(std::move(p));
  }
  if (!o.out.empty()) {
    RETURN_IF_ERROR(
        WriteFileAtomic(fs::path(o.out) / "predictions.json", PredictionsToJson(out).dump(2)));
  }
  return out;
}

}  // namespace detops
