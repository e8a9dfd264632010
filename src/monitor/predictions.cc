// Reading the prediction log back, and its JSON forms.

#include <cmath>
#include <limits>

#include "monitor/monitor_internal.h"

namespace detops {
namespace {

constexpr const char* kColumns =
    "SELECT id, at, at_ms, model_name, model_version, width, height, profile_json, "
    "embedding_json, detections_json, queue_ms, inference_ms, total_ms, image_blob "
    "FROM predictions ";

double Number(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

Result<StoredPrediction> RowToPrediction(const SqlRow& r) {
  StoredPrediction p;
  PredictionRecord& rec = p.record;
  rec.id = r.Text(0);
  p.at = r.Text(1);
  rec.time_ms = r.Int(2);
  rec.model_name = r.Text(3);
  rec.model_version = static_cast<int>(r.Int(4));
  rec.width = static_cast<int>(r.Int(5));
  rec.height = static_cast<int>(r.Int(6));
  const std::string what = "prediction " + rec.id;
  ASSIGN_OR_RETURN(Json profile, ParseJson(r.Text(7), what + " profile_json"));
  ASSIGN_OR_RETURN(Json embedding, ParseJson(r.Text(8), what + " embedding_json"));
  ASSIGN_OR_RETURN(Json detections, ParseJson(r.Text(9), what + " detections_json"));
  if (!embedding.is_array() || !detections.is_array()) {
    return Status::Corruption(what + ": embedding_json and detections_json must be arrays");
  }
  rec.profile = ProfileFromJson(profile);
  rec.embedding = EmbeddingFromJson(embedding);
  rec.detections = DetectionsFromJson(detections);
  rec.queue_ms = r.Real(10);
  rec.inference_ms = r.Real(11);
  rec.total_ms = r.Real(12);
  p.image_blob = r.Text(13);
  return p;
}

Result<std::vector<StoredPrediction>> RowsToPredictions(const std::vector<SqlRow>& rows) {
  std::vector<StoredPrediction> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(StoredPrediction p, RowToPrediction(r));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

Json ProfileToJson(const LiveImageProfile& p) {
  return {{"brightness", p.brightness}, {"contrast", p.contrast}, {"sharpness", p.sharpness},
          {"mean_b", p.mean_b},         {"mean_g", p.mean_g},     {"mean_r", p.mean_r}};
}

LiveImageProfile ProfileFromJson(const Json& j) {
  LiveImageProfile p;
  if (!j.is_object()) return p;
  p.brightness = Number(j, "brightness");
  p.contrast = Number(j, "contrast");
  p.sharpness = Number(j, "sharpness");
  p.mean_b = Number(j, "mean_b");
  p.mean_g = Number(j, "mean_g");
  p.mean_r = Number(j, "mean_r");
  return p;
}

Json EmbeddingToJson(const std::vector<float>& embedding) {
  Json out = Json::array();
  for (float f : embedding) {
    if (!std::isfinite(f)) {
      out.push_back(nullptr);
    } else {
      out.push_back(std::round(static_cast<double>(f) * 1e4) / 1e4);
    }
  }
  return out;
}

std::vector<float> EmbeddingFromJson(const Json& j) {
  std::vector<float> out;
  out.reserve(j.size());
  for (const Json& v : j) {
    out.push_back(v.is_number() ? v.get<float>() : std::numeric_limits<float>::quiet_NaN());
  }
  return out;
}

Json DetectionsToJson(const std::vector<LoggedDetection>& detections) {
  Json out = Json::array();
  for (const LoggedDetection& d : detections) {
    out.push_back({{"class", d.class_name},
                   {"class_id", d.class_id},
                   {"score", d.score},
                   {"x1", d.x1},
                   {"y1", d.y1},
                   {"x2", d.x2},
                   {"y2", d.y2}});
  }
  return out;
}

std::vector<LoggedDetection> DetectionsFromJson(const Json& j) {
  std::vector<LoggedDetection> out;
  for (const Json& d : j) {
    if (!d.is_object()) continue;
    LoggedDetection x;
    auto c = d.find("class");
    if (c != d.end() && c->is_string()) x.class_name = c->get<std::string>();
    x.class_id = static_cast<int>(Number(d, "class_id"));
    x.score = Number(d, "score");
    x.x1 = Number(d, "x1");
    x.y1 = Number(d, "y1");
    x.x2 = Number(d, "x2");
    x.y2 = Number(d, "y2");
    out.push_back(std::move(x));
  }
  return out;
}

Result<StoredPrediction> GetPrediction(Workspace& ws, const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(std::string(kColumns) + "WHERE id = ?", {id}));
  if (rows.empty()) return Status::NotFound("no prediction with id '" + id + "'");
  return RowToPrediction(rows[0]);
}

Result<std::vector<StoredPrediction>> ListPredictions(Workspace& ws, const std::string& model_name,
                                                      int limit) {
  std::string sql = kColumns;
  std::vector<SqlValue> params;
  if (!model_name.empty()) {
    sql += "WHERE model_name = ? ";
    params.emplace_back(model_name);
  }
  sql += "ORDER BY at_ms DESC, id DESC";
  if (limit > 0) {
    sql += " LIMIT ?";
    params.emplace_back(int64_t{limit});
  }
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  return RowsToPredictions(rows);
}

Result<std::vector<StoredPrediction>> ListPredictionsAfter(
    Workspace& ws, const std::string& model_name, int64_t after_ms, const std::string& after_id,
    int64_t until_ms, int limit, const std::vector<CandidateSpan>& skip) {
  std::string sql = std::string(kColumns) +
                    "WHERE model_name = ? AND at_ms >= ? AND (at_ms, id) > (?, ?) AND at_ms <= ? ";
  std::vector<SqlValue> params = {model_name, after_ms, after_ms, after_id, until_ms};
  for (const CandidateSpan& s : skip) {
    if (s.to_ms < after_ms || s.from_ms > until_ms) continue;  // outside the read
    sql += "AND NOT (model_version = ? AND at_ms >= ? AND at_ms <= ?) ";
    params.insert(params.end(), {int64_t{s.version}, s.from_ms, s.to_ms});
  }
  params.emplace_back(int64_t{limit});
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql + "ORDER BY at_ms, id LIMIT ?", params));
  return RowsToPredictions(rows);
}

Json PredictionToJson(const StoredPrediction& p) {
  const PredictionRecord& r = p.record;
  return {
      {"id", r.id},
      {"at", p.at},
      {"time_ms", r.time_ms},
      {"model_name", r.model_name},
      {"model_version", r.model_version},
      {"width", r.width},
      {"height", r.height},
      {"profile", ProfileToJson(r.profile)},
      {"embedding", EmbeddingToJson(r.embedding)},
      {"detections", DetectionsToJson(r.detections)},
      {"latency_ms", {{"queue", r.queue_ms}, {"inference", r.inference_ms}, {"total", r.total_ms}}},
      {"image_blob", p.image_blob}};
}

}  // namespace detops
