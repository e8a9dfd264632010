#include "serve/model_host.h"

#include <cstdio>

namespace detops::serve {

Result<std::shared_ptr<LoadedModel>> ModelHost::Load(const ModelVersion& v) {
  auto m = std::make_shared<LoadedModel>();
  m->version = v;
  for (int i = 0; i < std::max(1, options_.replicas); ++i) {
    ASSIGN_OR_RETURN(auto d, Detector::Load(registry_->WeightsPath(v), options_.detector));
    if (d->config().classes != v.spec.classes) {
      return Status::Corruption(v.Ref() + ": the weights' classes differ from the registry's");
    }
    // Warm up: the first forward pass allocates; a request should not pay it.
    cv::Mat probe(v.spec.imgsz, v.spec.imgsz, CV_8UC3, cv::Scalar(114, 114, 114));
    RETURN_IF_ERROR(d->Predict({probe}, PredictOptions{}).status());
    m->replicas.push_back(std::move(d));
    m->busy.push_back(std::make_unique<std::mutex>());
  }
  return m;
}

Result<std::unique_ptr<ModelHost>> ModelHost::Start(
    Workspace& ws, const ModelHostOptions& options,
    std::function<void(const ModelVersion*, const ModelVersion&)> on_swap) {
  std::unique_ptr<ModelHost> host(new ModelHost(ws, options));
  ASSIGN_OR_RETURN(host->registry_, Registry::Open(ws));
  host->on_swap_ = std::move(on_swap);
  ModelRef ref{options.name, options.version, options.version > 0 ? "" : options.alias};
  ASSIGN_OR_RETURN(ModelVersion v, host->registry_->Get(ref));
  ASSIGN_OR_RETURN(host->current_, host->Load(v));
  if (host->on_swap_) host->on_swap_(nullptr, v);
  if (options.version == 0) host->watcher_ = std::thread([h = host.get()] { h->Watch(); });
  return host;
}

ModelHost::~ModelHost() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<LoadedModel> ModelHost::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

void ModelHost::CheckNow() {
  {
    std::lock_guard lock(mu_);
    check_now_ = true;
  }
  wake_.notify_all();
}

void ModelHost::Watch() {
  int failed_version = 0;  // do not retry a version that failed to load
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms),
                   [&] { return stop_ || check_now_; });
    if (stop_) break;
    check_now_ = false;
    const int serving = current_->version.version;
    lock.unlock();
    auto target = registry_->AliasVersion(options_.name, options_.alias);
    if (target.ok() && *target && **target != serving && **target != failed_version) {
      auto v = registry_->Get(ModelRef{options_.name, **target, ""});
      auto loaded = v.ok() ? Load(*v) : Result<std::shared_ptr<LoadedModel>>(v.status());
      if (loaded.ok()) {
        std::shared_ptr<LoadedModel> old;
        {
          std::lock_guard swap(mu_);
          old = current_;
          current_ = *loaded;
        }
        if (on_swap_) on_swap_(&old->version, (*loaded)->version);
        failed_version = 0;
      } else {
        ++load_failures_;
        failed_version = **target;
        std::fprintf(stderr, "serve: cannot load %s@%d (keeping %d): %s\n", options_.name.c_str(),
                     **target, serving, loaded.status().message().c_str());
      }
    }
    lock.lock();
  }
}

}  // namespace detops::serve
