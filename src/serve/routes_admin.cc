// POST /v1/feedback, GET /v1/models, promotion and rollback over HTTP, the
// jobs a promotion may become, and bearer-token checks.

#include <cmath>
#include <ctime>

#include "pipeline/pipeline.h"
#include "serve/server_internal.h"

namespace detops::serve {
namespace {

Result<Json> ParseBody(const httplib::Request& req) {
  if (req.body.empty()) return Status::InvalidInput("empty body: expected a JSON object");
  auto j = ParseJson(req.body, "the request body");
  if (!j.ok()) return Status::InvalidInput(j.status().message());
  if (!j->is_object()) return Status::InvalidInput("the request body must be a JSON object");
  return j;
}

Result<std::vector<FeedbackBox>> ReadBoxes(const Json& body) {
  if (!body.contains("boxes") || !body["boxes"].is_array()) {
    return Status::InvalidInput("\"boxes\" must be an array (empty when there is no damage)");
  }
  std::vector<FeedbackBox> boxes;
  for (size_t i = 0; i < body["boxes"].size(); ++i) {
    const Json& b = body["boxes"][i];
    const std::string where = "boxes[" + std::to_string(i) + "]";
    if (!b.is_object() || !b.contains("class") || !b["class"].is_string()) {
      return Status::InvalidInput(where +
                                  ": expected {\"class\": NAME, \"box\": [x1, y1, x2, y2]}");
    }
    const Json& xy = b.contains("box") ? b["box"] : Json();
    if (!xy.is_array() || xy.size() != 4) {
      return Status::InvalidInput(where + ".box: expected [x1, y1, x2, y2] in image pixels");
    }
    for (const Json& v : xy) {
      if (!v.is_number()) return Status::InvalidInput(where + ".box: coordinates must be numbers");
    }
    boxes.push_back({b["class"].get<std::string>(), xy[0].get<double>(), xy[1].get<double>(),
                     xy[2].get<double>(), xy[3].get<double>()});
  }
  return boxes;
}

// A promotion's answer: what the gates found and what changed.
Json PromotionToJson(const PromoteJobResult& r, const std::string& to) {
  Json j = {{"candidate", r.candidate.Ref()},
            {"to", to},
            {"applied", r.applied},
            {"unchanged", r.unchanged},
            {"gates", GateReportToJson(r.gates)},
            {"notes", r.notes}};
  if (r.applied) j["audit"] = AuditEntryToJson(r.entry);
  return j;
}

Json TimeOrNull(int64_t ms) {
  if (ms == 0) return nullptr;
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string JobUrl(const std::string& id) { return "/v1/jobs/" + id; }

Json JobToJson(const JobSnapshot& job) {
  Json j = {{"id", job.id},
            {"url", JobUrl(job.id)},
            {"kind", job.kind},
            {"subject", job.subject},
            {"actor", job.actor},
            {"state", JobStateName(job.state)},
            {"progress", job.progress},
            {"created", TimeOrNull(job.created_ms)},
            {"started", TimeOrNull(job.started_ms)},
            {"finished", TimeOrNull(job.finished_ms)},
            {"result", job.result}};
  if (!job.error.ok()) {
    const int status = HttpStatusFor(job.error);
    j["error"] = {
        {"code", ErrorCodeFor(status)}, {"status", status}, {"message", job.error.message()}};
  }
  return j;
}

// RFC 7240: the client asks for the job handle even when the answer is quick.
bool PrefersAsync(const httplib::Request& req) {
  return req.get_header_value("Prefer").find("respond-async") != std::string::npos;
}

}  // namespace

bool ServerImpl::Authorize(const httplib::Request& req, httplib::Response& res, TokenRole need,
                           std::string* actor) {
  const std::string h = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() <= kBearer.size() || h.compare(0, kBearer.size(), kBearer) != 0) {
    res.set_header("WWW-Authenticate", "Bearer");
    SendError(res, 401, "unauthenticated",
              "this route needs 'Authorization: Bearer TOKEN' (detops tokens create)");
    return false;
  }
  auto token = tokens_->Verify(std::string_view(h).substr(kBearer.size()));
  if (!token.ok()) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    SendError(res, 401, "unauthenticated", "invalid token: " + token.status().message());
    return false;
  }
  if (!RoleAllows(token->role, need)) {
    SendError(res, 403, "forbidden",
              std::string("this route needs a ") + TokenRoleName(need) + " token; this one is " +
                  TokenRoleName(token->role));
    return false;
  }
  if (actor) *actor = "token " + token->id + (token->name.empty() ? "" : " (" + token->name + ")");
  return true;
}

void ServerImpl::Feedback(const httplib::Request& req, httplib::Response& res) {
  std::string actor;
  if (!Authorize(req, res, TokenRole::kWriter, &actor)) return;
  auto body = ParseBody(req);
  if (!body.ok()) return SendStatus(res, body.status());
  if (!body->contains("prediction_id") || !(*body)["prediction_id"].is_string()) {
    return SendError(res, 400, "bad_request", "\"prediction_id\" (a string) is required");
  }
  const std::string id = (*body)["prediction_id"].get<std::string>();
  auto boxes = ReadBoxes(*body);
  if (!boxes.ok()) return SendStatus(res, boxes.status());
  auto pred = GetPrediction(ws_, id);
  if (!pred.ok() && pred.status().code() == StatusCode::kNotFound) {
    // The log writes asynchronously: a prediction made a moment ago may
    // still be in its buffer.
    (void)log_->Flush();
    pred = GetPrediction(ws_, id);
  }
  if (!pred.ok()) return SendStatus(res, pred.status());
  auto version = registry_->Get(ModelRef{pred->record.model_name, pred->record.model_version, ""});
  if (!version.ok()) return SendStatus(res, version.status());
  auto fb = RecordFeedback(ws_, id, std::move(*boxes), version->spec.classes, actor);
  if (!fb.ok()) return SendStatus(res, fb.status());
  res.status = 201;
  res.set_content(FeedbackToJson(*fb).dump(), "application/json");
}

void ServerImpl::Models(const httplib::Request& req, httplib::Response& res) {
  if (o_.tokens_for_reads && !Authorize(req, res, TokenRole::kReader, nullptr)) return;
  auto current = host_->Current();
  auto versions = registry_->List(o_.model);
  if (!versions.ok()) return SendStatus(res, versions.status());
  Json list = Json::array();
  for (const ModelVersion& v : *versions) list.push_back(ModelVersionToJson(v));
  Json j = {{"serving",
             {{"name", current->version.name},
              {"version", current->version.version},
              {"ref", current->version.Ref()},
              {"following", o_.version > 0 ? "" : o_.alias},
              {"classes", current->version.spec.classes},
              {"imgsz", current->version.spec.imgsz},
              {"precision", current->replicas.front()->precision()}}},
            {"versions", list}};
  // The rollout this server routes by, as it last polled it.
  auto rollout = CurrentRollout();
  j["rollout"] = nullptr;
  if (rollout) {
    const Rollout& r = rollout->rollout;
    j["rollout"] = {{"id", r.id},
                    {"mode", r.mode},
                    {"candidate", r.model_name + "@" + std::to_string(r.candidate_version)},
                    {"share", r.share},
                    {"stage", r.stage},
                    {"loaded", rollout->candidate != nullptr},
                    {"load_error", rollout->load_error}};
  }
  res.set_content(j.dump(), "application/json");
}

// A promotion runs on the server's job worker, never on this connection
// thread: when the gates can decide from the metrics stored with the
// versions it finishes in milliseconds and is answered here (200, or 409
// when refused); when production must first be re-evaluated on the
// candidate's test split (it reports that step before starting it), or
// other jobs are ahead of it, or the client sent "Prefer: respond-async",
// the answer is 202 with the job to poll at Location.
void ServerImpl::Promote(const httplib::Request& req, httplib::Response& res) {
  std::string actor;
  if (!Authorize(req, res, TokenRole::kAdmin, &actor)) return;
  auto body = ParseBody(req);
  if (!body.ok()) return SendStatus(res, body.status());
  PromoteJobOptions po;
  po.model = req.matches[1].str() + "@" + req.matches[2].str();
  try {
    po.to = body->value("to", "");
    po.reason = body->value("reason", "");
    po.force = body->value("force", false);
  } catch (const Json::exception&) {
    return SendError(
        res, 400, "bad_request",
        "expected {\"to\": \"staging|production\", \"reason\": TEXT, \"force\": BOOL}");
  }
  po.actor = actor;
  po.threads = o_.threads;
  po.device = o_.device;
  const std::string subject = po.model + " -> " + po.to;
  auto submitted = jobs_->Submit(
      "promote", subject, actor, [this, po](const JobRunner::Progress& progress) mutable {
        po.on_progress = progress;
        auto r = RunPromoteJob(ws_, po);
        if (!r.ok()) return JobOutcome{r.status(), nullptr};
        // A promotion of what we serve swaps now, not at the next poll.
        if (r->applied) host_->CheckNow();
        Json result = PromotionToJson(*r, po.to);
        if (r->applied || r->unchanged) return JobOutcome{Status::Ok(), std::move(result)};
        // A refusal is a conflict with the policy (HTTP 409), the table its detail.
        return JobOutcome{Status::AlreadyExists(r->candidate.Ref() + " not promoted to " + po.to +
                                                ": a gate failed (\"force\": true with a "
                                                "\"reason\" overrides it)"),
                          std::move(result)};
      });
  if (!submitted.ok()) {
    res.set_header("Retry-After", "30");
    return SendStatus(res, submitted.status());
  }
  JobSnapshot job = *jobs_->Get(submitted->id);
  // A client that asked for the handle gets it even when the worker was
  // quicker than this thread (the job may be finished already).
  const bool async = PrefersAsync(req);
  if (submitted->ahead == 0 && !async) {
    job = jobs_->WaitFor(
        submitted->id, [](const JobSnapshot& j) { return j.finished() || !j.progress.empty(); },
        std::chrono::seconds(5));
  }
  if (!async && job.finished() && !job.result.is_null()) {
    res.status = job.error.ok() ? 200 : HttpStatusFor(job.error);
    res.set_content(job.result.dump(), "application/json");
    return;
  }
  if (!async && job.finished()) return SendStatus(res, job.error);
  res.status = 202;
  res.set_header("Location", JobUrl(job.id));
  res.set_content(JobToJson(job).dump(), "application/json");
}

void ServerImpl::GetJob(const httplib::Request& req, httplib::Response& res) {
  if (!Authorize(req, res, TokenRole::kAdmin, nullptr)) return;
  auto job = jobs_->Get(req.matches[1].str());
  if (!job) {
    return SendError(res, 404, "not_found",
                     "no job " + req.matches[1].str() +
                         " here: a server keeps its jobs in memory (the last 64 finished) until "
                         "it restarts; the registry's history (detops models history) keeps "
                         "what a promotion changed");
  }
  res.set_content(JobToJson(*job).dump(), "application/json");
}

void ServerImpl::Rollback(const httplib::Request& req, httplib::Response& res) {
  std::string actor;
  if (!Authorize(req, res, TokenRole::kAdmin, &actor)) return;
  Json body = Json::object();
  if (!req.body.empty()) {
    auto b = ParseBody(req);
    if (!b.ok()) return SendStatus(res, b.status());
    body = *b;
  }
  std::string alias, reason;
  try {
    alias = body.value("alias", kProduction);
    reason = body.value("reason", "");
  } catch (const Json::exception&) {
    return SendError(res, 400, "bad_request", "expected {\"alias\": NAME, \"reason\": TEXT}");
  }
  auto e = RunRollbackJob(ws_, req.matches[1].str(), alias, actor, reason);
  if (!e.ok()) return SendStatus(res, e.status());
  host_->CheckNow();
  res.set_content(AuditEntryToJson(*e).dump(), "application/json");
}

void SendStatus(httplib::Response& res, const Status& s) {
  int status = HttpStatusFor(s);
  SendError(res, status, ErrorCodeFor(status), s.message());
}

}  // namespace detops::serve
