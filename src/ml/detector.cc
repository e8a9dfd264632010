// Detector: a weights file loaded for inference.

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ml/device.h"
#include "ml/inference.h"
#include "ml/ml.h"
#include "ml/weights.h"

namespace detops {
namespace {

class TorchDetector final : public Detector {
 public:
  TorchDetector(ModelConfig config, ml::DetectorNet net, torch::Device device,
                std::string precision)
      : config_(std::move(config)),
        net_(std::move(net)),
        device_(device),
        grid_(ml::MakeGrid(config_.imgsz, device)),
        precision_(std::move(precision)),
        dtype_(precision_ == "bf16" ? torch::kBFloat16 : torch::kFloat) {
    parameters_ = ml::CountParameters(net_);
    flops_ = ml::EstimateFlops(net_, config_.imgsz);
    net_->to(device_);
    ml::ToLayout(net_, ml::LayoutFor(device_));
    net_->eval();
    ml::FuseBatchNorm(net_, dtype_);
  }
  const ModelConfig& config() const override { return config_; }
  int64_t parameters() const override { return parameters_; }
  double flops() const override { return flops_; }
  const std::string& precision() const override { return precision_; }

  Result<std::vector<std::vector<Detection>>> Predict(const std::vector<cv::Mat>& images,
                                                      const PredictOptions& options) override {
    return Predict(images, options, nullptr);
  }

  Result<std::vector<std::vector<Detection>>> Predict(
      const std::vector<cv::Mat>& images, const PredictOptions& options,
      std::vector<std::vector<float>>* embeddings) override {
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i].empty() || images[i].type() != CV_8UC3) {
        return Status::InvalidInput("image " + std::to_string(i) +
                                    " is not an 8-bit BGR image (use LoadImageForModel)");
      }
    }
    try {
      return ml::Infer(net_, config_, device_, grid_, images, options, embeddings, dtype_);
    } catch (const c10::Error& e) {
      return Status::Internal(std::string("inference failed: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {  // OpenCV's letterbox, allocation
      return Status::Internal(std::string("inference failed: ") + e.what());
    }
  }

 private:
  ModelConfig config_;
  ml::DetectorNet net_;
  torch::Device device_;
  ml::Grid grid_;
  std::string precision_;
  torch::ScalarType dtype_;
  int64_t parameters_ = 0;
  double flops_ = 0;
};

}  // namespace

void SetProcessThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

std::string BestDevice() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

std::string TorchVersion() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH) + ", BLAS " + BlasLibrary();
}

std::string BlasLibrary() {
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sgemm == nullptr || dladdr(sgemm, &info) == 0 || info.dli_fname == nullptr) {
    return "unknown";
  }
  // Debian installs each BLAS as /usr/lib/<triple>/<flavour>/libblas.so.3
  // behind an alternatives symlink; the netlib one's folder is "blas".
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(info.dli_fname, ec);
  if (ec) p = info.dli_fname;
  std::string flavour = p.parent_path().filename().string();
  if (flavour == "blas") return "reference";
  // Not behind alternatives (the file sits in the multiarch folder itself).
  if (flavour.find("-linux-") != std::string::npos) return p.filename().string();
  return flavour;
}

namespace ml {
Result<torch::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      return Status::Unavailable(
          "--device cuda: this LibTorch build or machine has no CUDA device");
    }
    return torch::Device(torch::kCUDA);
  }
  return Status::InvalidInput("unknown device '" + name + "' (cpu|cuda)");
}
}  // namespace ml

Result<std::unique_ptr<Detector>> Detector::Load(const std::filesystem::path& weights,
                                                 const DetectorOptions& options) {
  ASSIGN_OR_RETURN(torch::Device device, ml::ParseDevice(options.device));
  ASSIGN_OR_RETURN(std::string precision, ResolvePrecision(options.precision, options.device));
  ASSIGN_OR_RETURN(ModelConfig config, ml::ReadConfig(weights));
  try {
    ml::DetectorNet net(ml::NetConfigFor(config));
    ASSIGN_OR_RETURN(auto counts, ml::LoadWeightsInto(weights, net));
    if (counts.second > 0) {
      return Status::Corruption(weights.string() + ": " + std::to_string(counts.second) +
                                " tensors do not match the model its config describes");
    }
    return std::unique_ptr<Detector>(new TorchDetector(config, net, device, precision));
  } catch (const c10::Error& e) {
    return Status::Internal(weights.string() +
                            ": cannot load the model: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(weights.string() + ": cannot load the model: " + e.what());
  }
}

void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) {
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

Result<cv::Mat> LoadImageForModel(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(path.string() + ": no such image file");
  }
  cv::Mat img;
  try {
    // IMREAD_COLOR applies EXIF orientation and converts grey, 16-bit,
    // alpha and CMYK to 8-bit BGR.
    img = cv::imread(path.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Status::InvalidInput(path.string() + ": cannot decode: " + e.what());
  }
  if (img.empty()) return Status::InvalidInput(path.string() + ": not a decodable image");
  return img;
}

}  // namespace detops
