// Feedback: corrected boxes for a logged prediction. Every feedback is a
// row; the latest per prediction is the one that counts.

#include <algorithm>
#include <cmath>

#include "monitor/monitor_internal.h"

namespace detops {
namespace {

// Corners may lie this far outside the image (then they are clamped).
constexpr double kTolerancePx = 1.0;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string JoinClasses(const std::vector<std::string>& classes) {
  std::string s;
  for (const std::string& c : classes) s += (s.empty() ? "" : ", ") + c;
  return s.empty() ? "none" : s;
}

// Checks box `i` against the image; clamps corners within tolerance.
Status CheckBox(size_t i, FeedbackBox& b, int width, int height,
                const std::vector<std::string>& classes) {
  const std::string where = "boxes[" + std::to_string(i) + "]: ";
  for (double v : {b.x1, b.y1, b.x2, b.y2}) {
    if (!std::isfinite(v)) return Status::InvalidInput(where + "coordinate is not a finite number");
  }
  if (std::find(classes.begin(), classes.end(), b.class_name) == classes.end()) {
    return Status::InvalidInput(where + "unknown class '" + b.class_name +
                                "' (the model's classes: " + JoinClasses(classes) + ")");
  }
  if (b.x2 <= b.x1 || b.y2 <= b.y1) {
    return Status::InvalidInput(where + "inverted or empty box (x1 " + Num(b.x1) + ", y1 " +
                                Num(b.y1) + ", x2 " + Num(b.x2) + ", y2 " + Num(b.y2) +
                                "): needs x2 > x1 and y2 > y1");
  }
  if (width > 0 && height > 0) {
    const double w = width, h = height;
    if (b.x1 < -kTolerancePx || b.y1 < -kTolerancePx || b.x2 > w + kTolerancePx ||
        b.y2 > h + kTolerancePx) {
      return Status::InvalidInput(where + "outside the " + std::to_string(width) + "x" +
                                  std::to_string(height) + " image (x1 " + Num(b.x1) + ", y1 " +
                                  Num(b.y1) + ", x2 " + Num(b.x2) + ", y2 " + Num(b.y2) + ")");
    }
    b.x1 = std::clamp(b.x1, 0.0, w);
    b.x2 = std::clamp(b.x2, 0.0, w);
    b.y1 = std::clamp(b.y1, 0.0, h);
    b.y2 = std::clamp(b.y2, 0.0, h);
    if (b.x2 <= b.x1 || b.y2 <= b.y1) {
      return Status::InvalidInput(where + "empty once clamped to the " + std::to_string(width) +
                                  "x" + std::to_string(height) + " image");
    }
  }
  return Status::Ok();
}

Result<FeedbackRecord> RowToFeedback(const SqlRow& r) {
  FeedbackRecord f;
  f.id = r.Int(0);
  f.prediction_id = r.Text(1);
  f.at = r.Text(2);
  f.actor = r.Text(3);
  const std::string what = "feedback " + std::to_string(f.id) + " boxes_json";
  ASSIGN_OR_RETURN(Json boxes, ParseJson(r.Text(4), what));
  auto parsed = FeedbackBoxesFromJson(boxes);
  if (!parsed.ok()) return Status::Corruption(what + ": " + parsed.status().message());
  f.boxes = std::move(parsed).value();
  f.exported_to = r.Text(5);
  return f;
}

}  // namespace

Json FeedbackBoxesToJson(const std::vector<FeedbackBox>& boxes) {
  Json out = Json::array();
  for (const FeedbackBox& b : boxes) {
    out.push_back(
        {{"class", b.class_name}, {"x1", b.x1}, {"y1", b.y1}, {"x2", b.x2}, {"y2", b.y2}});
  }
  return out;
}

Result<std::vector<FeedbackBox>> FeedbackBoxesFromJson(const Json& j) {
  if (!j.is_array()) return Status::InvalidInput("boxes: expected an array");
  std::vector<FeedbackBox> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& b = j[i];
    const std::string where = "boxes[" + std::to_string(i) + "]";
    if (!b.is_object()) return Status::InvalidInput(where + ": expected an object");
    FeedbackBox box;
    auto c = b.find("class");
    if (c == b.end() || !c->is_string()) {
      return Status::InvalidInput(where + ": 'class' must be a string");
    }
    box.class_name = c->get<std::string>();
    for (auto [key, field] : {std::pair{"x1", &box.x1}, std::pair{"y1", &box.y1},
                              std::pair{"x2", &box.x2}, std::pair{"y2", &box.y2}}) {
      auto v = b.find(key);
      if (v == b.end() || !v->is_number()) {
        return Status::InvalidInput(where + ": '" + key + "' must be a number");
      }
      *field = v->get<double>();
    }
    out.push_back(std::move(box));
  }
  return out;
}

Result<FeedbackRecord> RecordFeedback(Workspace& ws, const std::string& prediction_id,
                                      std::vector<FeedbackBox> boxes,
                                      const std::vector<std::string>& classes,
                                      const std::string& actor) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT width, height FROM predictions WHERE id = ?",
                                            {prediction_id}));
  if (rows.empty()) return Status::NotFound("no prediction with id '" + prediction_id + "'");
  const int width = static_cast<int>(rows[0].Int(0));
  const int height = static_cast<int>(rows[0].Int(1));
  for (size_t i = 0; i < boxes.size(); ++i) {
    RETURN_IF_ERROR(CheckBox(i, boxes[i], width, height, classes));
  }
  FeedbackRecord f;
  f.prediction_id = prediction_id;
  f.at = NowIso8601();
  f.actor = actor;
  f.boxes = std::move(boxes);
  const std::string boxes_json = FeedbackBoxesToJson(f.boxes).dump();
  Database& db = ws.db();
  // Ids are assigned here (not by the database) so that the same SQL runs on
  // PostgreSQL; the write transaction keeps them unique.
  RETURN_IF_ERROR(db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto next, db.Query("SELECT COALESCE(MAX(id), 0) + 1 FROM feedback"));
    f.id = next.at(0).Int(0);
    return db.Exec(
        "INSERT INTO feedback (id, prediction_id, at, actor, boxes_json, exported_to) VALUES (?, "
        "?, ?, ?, ?, '')",
        {f.id, f.prediction_id, f.at, f.actor, boxes_json});
  }));
  return f;
}

Result<std::vector<FeedbackRecord>> ListFeedback(Workspace& ws, const std::string& model_name,
                                                 bool only_unexported) {
  std::string sql =
      "SELECT f.id, f.prediction_id, f.at, f.actor, f.boxes_json, f.exported_to FROM feedback f "
      "JOIN predictions p ON p.id = f.prediction_id "
      "WHERE f.id = (SELECT MAX(g.id) FROM feedback g WHERE g.prediction_id = f.prediction_id)";
  std::vector<SqlValue> params;
  if (!model_name.empty()) {
    sql += " AND p.model_name = ?";
    params.emplace_back(model_name);
  }
  if (only_unexported) sql += " AND f.exported_to = ''";
  sql += " ORDER BY f.id";
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  std::vector<FeedbackRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    ASSIGN_OR_RETURN(FeedbackRecord f, RowToFeedback(r));
    out.push_back(std::move(f));
  }
  return out;
}

Status MarkFeedbackExported(Workspace& ws, const std::vector<int64_t>& ids,
                            const std::string& dataset_version) {
  if (ids.empty()) return Status::Ok();
  constexpr size_t kIdsPerUpdate = 500;
  Database& db = ws.db();
  return db.InTransaction([&]() -> Status {
    for (size_t i = 0; i < ids.size(); i += kIdsPerUpdate) {
      const size_t n = std::min(kIdsPerUpdate, ids.size() - i);
      std::string sql = "UPDATE feedback SET exported_to = ? WHERE id IN (";
      std::vector<SqlValue> params = {dataset_version};
      for (size_t j = 0; j < n; ++j) {
        sql += j ? ",?" : "?";
        params.emplace_back(ids[i + j]);
      }
      RETURN_IF_ERROR(db.Exec(sql + ")", params));
    }
    return Status::Ok();
  });
}

Json FeedbackToJson(const FeedbackRecord& f) {
  return {
      {"id", f.id},       {"prediction_id", f.prediction_id},      {"at", f.at},
      {"actor", f.actor}, {"boxes", FeedbackBoxesToJson(f.boxes)}, {"exported_to", f.exported_to}};
}

}  // namespace detops
