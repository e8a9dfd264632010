// POST /v1/predict and /v1/predict/batch, and the batch runner behind them.

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>

#include "data/image_profile.h"
#include "serve/server_internal.h"

namespace detops::serve {
namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Rounded to `unit` (a power of ten below 1), printed without binary noise.
double Round(double v, double unit) {
  const double scale = std::round(1 / unit);
  return std::round(v * scale) / scale;
}

// conf, iou, max_det from the query; InvalidInput naming the bad one.
Result<PredictOptions> ReadOptions(const httplib::Request& req) {
  PredictOptions o;
  auto number = [&](const char* key, double lo, double hi, double& out) -> Status {
    if (!req.has_param(key)) return Status::Ok();
    const std::string text = req.get_param_value(key);
    try {
      size_t used = 0;
      double v = std::stod(text, &used);
      if (used != text.size() || !(v >= lo && v <= hi)) throw std::exception();
      out = v;
      return Status::Ok();
    } catch (const std::exception&) {
      return Status::InvalidInput(std::string("query parameter ") + key + "='" + text +
                                  "': expected a number in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
    }
  };
  double conf = o.conf, iou = o.iou, max_det = o.max_det;
  RETURN_IF_ERROR(number("conf", 0, 1, conf));
  RETURN_IF_ERROR(number("iou", 0, 1, iou));
  RETURN_IF_ERROR(number("max_det", 1, 1000, max_det));
  if (max_det != std::floor(max_det)) return Status::InvalidInput("max_det must be an integer");
  o.conf = static_cast<float>(conf);
  o.iou = static_cast<float>(iou);
  o.max_det = static_cast<int>(max_det);
  return o;
}

bool KeepImage(double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
}

}  // namespace

LoggedDetection ToOriginalPixels(const Detection& d, const DecodedImage& img) {
  LoggedDetection l;
  l.class_name = d.class_name;
  l.class_id = d.class_id;
  l.score = d.score;
  l.x1 = std::clamp(d.x1 * img.scale, 0.0, double(img.width));
  l.y1 = std::clamp(d.y1 * img.scale, 0.0, double(img.height));
  l.x2 = std::clamp(d.x2 * img.scale, 0.0, double(img.width));
  l.y2 = std::clamp(d.y2 * img.scale, 0.0, double(img.height));
  return l;
}

std::vector<Status> ServerImpl::DecodeJobs(std::vector<PredictJob>& jobs, int imgsz) {
  std::vector<Status> status(jobs.size());
  if (std::all_of(jobs.begin(), jobs.end(), [](const PredictJob& j) { return j.decoded(); })) {
    return status;
  }
  ParallelFor(static_cast<int64_t>(jobs.size()), [&](int64_t i) {
    PredictJob& job = jobs[i];
    if (job.decoded()) return;
    const auto t0 = Clock::now();
    status[i] =
        DecodePixels(job.bytes, job.model ? job.model->version.spec.imgsz : imgsz, job.image);
    if (!status[i].ok()) return;
    job.decode_ms = Ms(Clock::now() - t0);
    job.profile = ProfileDecodedImage(job.image.bgr);
  });
  return status;
}

std::vector<Result<PredictOutcome>> ServerImpl::RunBatch(std::vector<PredictJob>& jobs) {
  const auto taken = Clock::now();
  std::shared_ptr<LoadedModel> production = host_->Current();
  std::vector<Result<PredictOutcome>> out(jobs.size(), Status::Internal("not run"));
  std::vector<bool> done(jobs.size(), false);
  // Images the connection threads left to us, decoded for the model that
  // runs them; an image that does not decode fails alone.
  const std::vector<Status> decoded = DecodeJobs(jobs, production->version.spec.imgsz);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!decoded[i].ok()) {
      out[i] = decoded[i];
      done[i] = true;
    } else if (plan_.decode_in_worker) {
      m_.decode_seconds->Observe(jobs[i].decode_ms / 1000);
    }
  }
  // The canary's requests first, on the candidate: those it fails run on
  // production in the second pass. Requests may ask for other NMS
  // settings: one forward pass per model and distinct (iou, max_det), at
  // the lowest confidence asked, then each request's own threshold.
  // Nearly always a single group.
  for (bool candidate : {true, false}) {
    for (size_t first = 0; first < jobs.size(); ++first) {
      if (done[first] || (jobs[first].model != nullptr) != candidate) continue;
      const std::shared_ptr<LoadedModel> model = candidate ? jobs[first].model : production;
      std::vector<size_t> group;
      PredictOptions po = jobs[first].options;
      for (size_t i = first; i < jobs.size(); ++i) {
        const bool same_model = candidate ? jobs[i].model == model : jobs[i].model == nullptr;
        if (!done[i] && same_model && jobs[i].options.iou == po.iou &&
            jobs[i].options.max_det == po.max_det) {
          group.push_back(i);
          done[i] = true;
          po.conf = std::min(po.conf, jobs[i].options.conf);
        }
      }
      const Status s = RunGroup(model, group, po, jobs, taken, out);
      if (s.ok()) continue;
      for (size_t i : group) {
        if (candidate) {
          jobs[i].candidate_error = s.message();
          jobs[i].model.reset();
          done[i] = false;
        } else {
          out[i] = s;
        }
      }
    }
  }
  return out;
}

Status ServerImpl::RunGroup(const std::shared_ptr<LoadedModel>& model,
                            const std::vector<size_t>& group, const PredictOptions& po,
                            std::vector<PredictJob>& jobs, Clock::time_point taken,
                            std::vector<Result<PredictOutcome>>& out) {
  std::vector<cv::Mat> images;
  for (size_t i : group) images.push_back(jobs[i].image.bgr);
  std::vector<std::vector<float>> embeddings;
  const auto t0 = Clock::now();
  Result<std::vector<std::vector<Detection>>> dets = Status::Internal("not run");
  try {
    dets = model->WithReplica([&](Detector& d) { return d.Predict(images, po, &embeddings); });
  } catch (const std::exception& e) {
    dets = Status::Internal(model->version.Ref() + ": " + e.what());
  }
  if (!dets.ok()) return dets.status();
  if (dets->size() != group.size() || embeddings.size() != group.size()) {
    return Status::Internal(model->version.Ref() + " answered " + std::to_string(dets->size()) +
                            " of " + std::to_string(group.size()) + " images");
  }
  const double infer_ms = Ms(Clock::now() - t0);
  for (size_t k = 0; k < group.size(); ++k) {
    PredictJob& job = jobs[group[k]];
    PredictOutcome r;
    r.id = job.id;
    r.model = model;
    r.rollout = job.rollout;
    r.by_candidate = job.model != nullptr;
    r.candidate_error = job.candidate_error;
    r.options = job.options;
    for (Detection& d : (*dets)[k]) {
      if (d.score >= job.options.conf) r.detections.push_back(std::move(d));
    }
    r.embedding = std::move(embeddings[k]);
    r.image = std::move(job.image);
    // The caller needs its size, not its pixels; a shadow candidate does.
    if (r.rollout && !r.rollout->canary() && r.rollout->candidate) r.pixels = r.image.bgr;
    r.image.bgr = cv::Mat();
    r.profile = std::move(job.profile);
    r.decode_ms = job.decode_ms;
    r.queue_ms = Ms(taken - job.queued);
    r.inference_ms = infer_ms;
    r.batch_size = static_cast<int>(jobs.size());
    out[group[k]] = std::move(r);
  }
  return Status::Ok();
}

Result<PredictJob> ServerImpl::PrepareJob(std::string_view bytes, const PredictOptions& options) {
  PredictJob job;
  job.bytes = bytes;
  job.options = options;
  // Bodies that are not an image, or too large a one, never queue.
  ASSIGN_OR_RETURN(job.image, CheckImage(bytes, DecodeLimits{o_.max_pixels, o_.max_side}));
  Route(job);
  if (!plan_.decode_in_worker) {
    // Decoded here for the model that runs it; a swap before the batch runs
    // changes nothing that matters (the letterbox takes any size).
    const auto t0 = Clock::now();
    const int imgsz = (job.model ? job.model : host_->Current())->version.spec.imgsz;
    RETURN_IF_ERROR(DecodePixels(bytes, imgsz, job.image));
    job.decode_ms = Ms(Clock::now() - t0);
    m_.decode_seconds->Observe(job.decode_ms / 1000);
    job.profile = ProfileDecodedImage(job.image.bgr);
  }
  return job;
}

Result<Json> ServerImpl::PredictOne(std::string_view bytes, const PredictOptions& options,
                                    Clock::time_point start) {
  ASSIGN_OR_RETURN(PredictJob job, PrepareJob(bytes, options));
  job.queued = Clock::now();
  auto submitted = batcher_->Submit(std::move(job));
  if (!submitted.ok()) {
    m_.rejected_full->Inc();
    return submitted.status();
  }
  ASSIGN_OR_RETURN(PredictOutcome r, submitted->get());
  return Answer(std::move(r), bytes, start);
}

Json ServerImpl::Answer(PredictOutcome r, std::string_view bytes, Clock::time_point start) {
  const double total_ms = Ms(Clock::now() - start);
  const DecodedImage& img = r.image;

  PredictionRecord rec;
  rec.id = r.id.empty() ? NewPredictionId() : r.id;
  rec.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  rec.model_name = r.model->version.name;
  rec.model_version = r.model->version.version;
  rec.width = img.width;
  rec.height = img.height;
  Json dets = Json::array();
  bool low = false;
  for (const Detection& d : r.detections) {
    LoggedDetection l = ToOriginalPixels(d, img);
    dets.push_back(
        {{"class", l.class_name},
         {"class_id", l.class_id},
         {"score", Round(l.score, 1e-4)},
         {"box", {Round(l.x1, 0.1), Round(l.y1, 0.1), Round(l.x2, 0.1), Round(l.y2, 0.1)}}});
    m_.detections->With({l.class_name}).Inc();
    low = low || d.score < o_.low_confidence;
    rec.detections.push_back(std::move(l));
  }
  if (low) m_.low_confidence->Inc();
  m_.predictions->Inc();
  ++predictions_;
  const ImageProfile& p = r.profile;
  rec.profile = {p.brightness, p.contrast, p.sharpness, p.mean_b, p.mean_g, p.mean_r};
  rec.embedding = std::move(r.embedding);
  rec.queue_ms = r.queue_ms;
  rec.inference_ms = r.inference_ms;
  rec.total_ms = total_ms;
  if (KeepImage(o_.keep_image_rate)) rec.image_bytes = std::string(bytes);
  Json j = {{"id", rec.id},
            {"model", {{"name", rec.model_name}, {"version", rec.model_version}}},
            {"image", {{"width", img.width}, {"height", img.height}, {"format", img.format}}},
            {"detections", std::move(dets)},
            {"timings_ms",
             {{"decode", Round(r.decode_ms, 0.01)},
              {"queue", Round(r.queue_ms, 0.01)},
              {"inference", Round(r.inference_ms, 0.01)},
              {"batch_size", r.batch_size},
              {"total", Round(total_ms, 0.01)}}}};
  if (r.rollout) {
    // Which arm answered: model.version says the version.
    j["rollout"] = {{"id", r.rollout->rollout.id},
                    {"mode", r.rollout->rollout.mode},
                    {"arm", r.by_candidate ? "candidate" : "production"}};
    AfterAnswer(r, rec);
  }
  log_->Append(std::move(rec));
  NotePrediction();
  return j;
}

void ServerImpl::Predict(const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  if (o_.tokens_for_reads && !Authorize(req, res, TokenRole::kReader, nullptr)) return;
  if (!ready_) return SendError(res, 503, "unavailable", "shutting down");
  auto options = ReadOptions(req);
  if (!options.ok()) return SendError(res, 400, "bad_request", options.status().message());
  std::string_view body;
  if (req.is_multipart_form_data()) {
    const httplib::MultipartFormData* part = nullptr;
    for (const char* field : {"file", "image"}) {
      if (req.has_file(field)) {
        part = &req.files.find(field)->second;
        break;
      }
    }
    if (!part) {
      return SendError(res, 400, "bad_request",
                       "multipart body without a \"file\" field holding the image");
    }
    body = part->content;
  } else {
    const std::string type = req.get_header_value("Content-Type");
    if (!IsImageMediaType(type)) {
      return SendError(res, 415, "unsupported_media_type",
                       "Content-Type '" + type +
                           "': send image/jpeg, image/png, image/webp or multipart/form-data");
    }
    body = req.body;
  }
  auto j = PredictOne(body, *options, start);
  if (!j.ok()) {
    int status = HttpStatusFor(j.status());
    if (status == 503) res.set_header("Retry-After", "1");
    return SendError(res, status, ErrorCodeFor(status), j.status().message());
  }
  res.set_content(j->dump(), "application/json");
}

void ServerImpl::PredictBatch(const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  if (o_.tokens_for_reads && !Authorize(req, res, TokenRole::kReader, nullptr)) return;
  if (!ready_) return SendError(res, 503, "unavailable", "shutting down");
  auto options = ReadOptions(req);
  if (!options.ok()) return SendError(res, 400, "bad_request", options.status().message());
  if (!req.is_multipart_form_data()) {
    return SendError(res, 415, "unsupported_media_type",
                     "send the images as multipart/form-data, one file part each");
  }
  std::vector<const httplib::MultipartFormData*> parts;
  for (const auto& [name, part] : req.files) {
    if (!part.filename.empty() || name == "file" || name == "files" || name == "image") {
      parts.push_back(&part);
    }
  }
  if (parts.empty()) return SendError(res, 400, "bad_request", "no file parts in the body");
  if (static_cast<int>(parts.size()) > o_.max_batch_images) {
    return SendError(res, 413, "payload_too_large",
                     std::to_string(parts.size()) + " images; the limit is " +
                         std::to_string(o_.max_batch_images) + " per batch request");
  }
  // Checked (and decoded, when the connection decodes) here, then queued
  // in one step, so that the batcher sees the images together.
  std::vector<Result<PredictJob>> prepared(parts.size(), Status::Internal("not run"));
  auto prepare = [&](size_t i) {
    prepared[i] = PrepareJob(parts[i]->content, *options);
    return Status::Ok();
  };
  if (decode_pool_) {
    ParallelForOptions po;
    po.pool = decode_pool_.get();
    (void)ParallelFor(parts.size(), prepare, po);
  } else {
    for (size_t i = 0; i < parts.size(); ++i) (void)prepare(i);
  }
  std::vector<PredictJob> jobs;
  for (auto& p : prepared) {
    if (!p.ok()) continue;
    p->queued = Clock::now();
    jobs.push_back(std::move(*p));
  }
  // One chunk per batch worker, queued in one step: each chunk reaches a
  // worker as one batch, and idle workers share the request.
  const size_t workers = static_cast<size_t>(std::max(1, batcher_->options().workers));
  const size_t chunk = (jobs.size() + workers - 1) / workers;
  auto submitted = batcher_->SubmitAll(std::move(jobs), chunk);
  std::vector<Result<Json>> answers;
  for (size_t i = 0, k = 0; i < parts.size(); ++i) {
    if (!prepared[i].ok()) {
      answers.push_back(prepared[i].status());
      continue;
    }
    auto& future = submitted[k++];
    if (!future.ok()) {
      m_.rejected_full->Inc();
      answers.push_back(future.status());
      continue;
    }
    Result<PredictOutcome> r = future->get();
    if (!r.ok()) {
      answers.push_back(r.status());
      continue;
    }
    answers.push_back(Answer(std::move(*r), parts[i]->content, start));
  }
  Json results = Json::array();
  int failed = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    Result<Json>& j = answers[i];
    if (j.ok()) {
      (*j)["file"] = parts[i]->filename;
      results.push_back(std::move(*j));
    } else {
      ++failed;
      int status = HttpStatusFor(j.status());
      results.push_back({{"file", parts[i]->filename},
                         {"error",
                          {{"code", ErrorCodeFor(status)},
                           {"status", status},
                           {"message", j.status().message()}}}});
    }
  }
  Json out = {{"results", std::move(results)},
              {"images", parts.size()},
              {"failed", failed},
              {"total_ms", Round(Ms(Clock::now() - start), 0.01)}};
  res.set_content(out.dump(), "application/json");
}

}  // namespace detops::serve
