// POST /v1/feedback, GET /v1/models, promotion and rollback over HTTP, and
// bearer-token checks.

#include <cmath>

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

void SendStatus(httplib::Response& res, const Status& s) {
  int status = HttpStatusFor(s);
  SendError(res, status, ErrorCodeFor(status), s.message());
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
  res.set_content(j.dump(), "application/json");
}

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
  auto r = RunPromoteJob(ws_, po);
  if (!r.ok()) return SendStatus(res, r.status());
  Json j = {{"candidate", r->candidate.Ref()},
            {"to", po.to},
            {"applied", r->applied},
            {"unchanged", r->unchanged},
            {"gates", GateReportToJson(r->gates)},
            {"notes", r->notes}};
  if (r->applied) {
    j["audit"] = AuditEntryToJson(r->entry);
    host_->CheckNow();  // a promotion of what we serve swaps now, not at the next poll
  }
  // A refused promotion is a conflict with the policy.
  res.status = r->applied || r->unchanged ? 200 : 409;
  res.set_content(j.dump(), "application/json");
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

}  // namespace detops::serve
