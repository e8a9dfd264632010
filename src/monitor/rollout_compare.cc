// The two arms of a rollout, measured as the monitor measures a window
// (latency, prediction confidence, accuracy from feedback with
// AccuracyFromFeedback, service errors from the servers' samples), and the
// candidate's shadow answers.

#include <algorithm>
#include <map>

#include "eval/eval.h"
#include "monitor/monitor_internal.h"
#include "monitor/rollout.h"

namespace detops {
namespace {

// As window_score.cc and the reference profile: a detection under this
// score is low-confidence.
constexpr double kLowConfidence = 0.5;
// Labelled answers per arm that accuracy is computed from (the newest).
constexpr int kMaxLabels = 2000;
// Service samples this far around the period are read to bracket it.
constexpr int64_t kSampleMarginMs = 120'000;
// The accuracy drop's interval: the candidate fails only when its lower
// bound (5th percentile) exceeds the allowed drop. mAP50 over a few dozen
// photos moves by 0.15 between two draws of the same model; a point
// comparison would abort good releases on noise (demo run 4: 0.087 on 23
// labels vs 0.243 on 97).
constexpr double kIntervalTail = 0.05;

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One arm's answers in the period.
struct Answers {
  std::vector<std::string> ids;
  std::vector<double> ms;
  std::vector<std::vector<LoggedDetection>> detections;
  void Add(std::string id, double latency_ms, std::vector<LoggedDetection> d) {
    ids.push_back(std::move(id));
    ms.push_back(latency_ms);
    detections.push_back(std::move(d));
  }
};

// Latency, confidence and detections per image, as the monitor's
// prediction signals compute them.
void Summarize(const Answers& a, ArmFigures& f) {
  if (a.ms.empty()) return;
  f.p95_ms = SummarizeLatency(a.ms).p95_ms;
  double score_sum = 0, low_sum = 0;
  int64_t dets = 0;
  for (const auto& image : a.detections) {
    int low = 0;
    for (const LoggedDetection& d : image) {
      score_sum += d.score;
      low += d.score < kLowConfidence;
    }
    dets += static_cast<int64_t>(image.size());
    low_sum += image.empty() ? 0.0 : static_cast<double>(low) / image.size();
  }
  const double n = static_cast<double>(a.detections.size());
  f.mean_score = dets > 0 ? score_sum / dets : 0;
  f.low_confidence_share = low_sum / n;
  f.detections_per_image = dets / n;
}

Result<std::vector<LoggedDetection>> Detections(const std::string& text, const std::string& what) {
  ASSIGN_OR_RETURN(Json j, ParseJson(text, what));
  if (!j.is_array()) return Status::Corruption(what + ": expected an array");
  return DetectionsFromJson(j);
}

// A canary arm: the version's logged answers in [from, to].
Result<Answers> LoggedAnswers(Workspace& ws, const Rollout& r, int version, int64_t from,
                              int64_t to) {
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT id, total_ms, detections_json FROM predictions WHERE "
                                 "model_name = ? AND model_version = ? AND at_ms >= ? AND "
                                 "at_ms <= ? ORDER BY at_ms, id",
                                 {r.model_name, int64_t{version}, from, to}));
  Answers a;
  for (const SqlRow& row : rows) {
    ASSIGN_OR_RETURN(auto d, Detections(row.Text(2), "prediction " + row.Text(0)));
    a.Add(row.Text(0), row.Real(1), std::move(d));
  }
  return a;
}

// Candidate failures of a rollout in [from, to].
Result<int64_t> CountFailures(Workspace& ws, int64_t rollout, int64_t from, int64_t to) {
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT COUNT(*) FROM shadow_predictions WHERE "
                                            "rollout = ? AND at_ms >= ? AND at_ms <= ? AND "
                                            "error <> ''",
                                            {rollout, from, to}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

// Accuracy of each arm's labelled answers into `f`; the labels and mAP50.
void Accuracy(const std::vector<LabelledPrediction>& labelled,
              const std::vector<std::string>& classes, ArmFigures& f) {
  f.labelled = static_cast<int64_t>(labelled.size());
  if (labelled.empty()) return;
  f.map50 = AccuracyFromFeedback(labelled, classes).map50;
}

// The checks, as gates and as sentences.
class Checks {
 public:
  explicit Checks(RolloutReport& r) : r_(r) {}
  // `ok` with `actual` against `required`; margin in the check's units.
  void Add(const std::string& gate, const std::string& required, const std::string& actual, bool ok,
           double margin) {
    r_.checks.checks.push_back({gate, required, actual, ok, margin});
    (ok ? r_.passed : r_.failed).push_back(gate + " " + actual + " (" + required + ")");
  }
  void Skip(const std::string& gate, const std::string& why) {
    r_.skipped.push_back(gate + ": " + why);
  }

 private:
  RolloutReport& r_;
};

void Check(const Rollout& r, const std::optional<Interval>& drop_interval, RolloutReport& out) {
  const RolloutPolicy& p = r.policy;
  const ArmFigures &prod = out.production, &cand = out.candidate;
  Checks checks(out);
  if (cand.requests == 0) {
    checks.Skip("error rate", "no candidate requests yet");
  } else {
    const double increase = cand.error_rate - prod.error_rate;
    checks.Add("error rate", "increase <= " + Fixed(p.max_error_rate_increase, 3),
               Fixed(cand.error_rate, 3) + " (" + std::to_string(cand.failures) + " of " +
                   std::to_string(cand.requests) + ") vs production " + Fixed(prod.error_rate, 3),
               increase <= p.max_error_rate_increase, p.max_error_rate_increase - increase);
  }
  const int64_t cand_answers = cand.requests - cand.failures;
  if (r.mode == kRolloutShadow) {
    checks.Skip("latency p95", "the candidate scores off the request path, beside production");
  } else if (cand_answers <= 0 || prod.requests <= 0 || prod.p95_ms <= 0) {
    checks.Skip("latency p95", "needs answers on both arms");
  } else {
    const double ratio = cand.p95_ms / prod.p95_ms;
    checks.Add("latency p95", "ratio <= " + Fixed(p.max_p95_ratio, 2),
               Fixed(cand.p95_ms, 1) + " ms vs production " + Fixed(prod.p95_ms, 1) +
                   " ms, ratio " + Fixed(ratio, 2),
               ratio <= p.max_p95_ratio, p.max_p95_ratio - ratio);
  }
  if (cand_answers <= 0 || prod.requests <= 0) {
    checks.Skip("confidence", "needs answers on both arms");
  } else {
    const double bound = p.max_low_confidence_increase;
    if (cand.mean_score > 0 && prod.mean_score > 0) {
      const double drop = prod.mean_score - cand.mean_score;
      checks.Add("mean score", "drop <= " + Fixed(bound, 3),
                 Fixed(cand.mean_score, 3) + " vs production " + Fixed(prod.mean_score, 3),
                 drop <= bound, bound - drop);
    } else {
      checks.Skip("mean score", "an arm made no detections");
    }
    const double rise = cand.low_confidence_share - prod.low_confidence_share;
    checks.Add("low-confidence share", "rise <= " + Fixed(bound, 3),
               Fixed(cand.low_confidence_share, 3) + " vs production " +
                   Fixed(prod.low_confidence_share, 3),
               rise <= bound, bound - rise);
  }
  if (!drop_interval) {
    checks.Skip("accuracy map50",
                std::to_string(cand.labelled) + " and " + std::to_string(prod.labelled) +
                    " labels (needs " + std::to_string(std::max(1, p.min_labels)) + " on each arm" +
                    (out.enough ? ")" : "; judged once the stage has enough traffic)"));
  } else {
    // Fails when the drop is beyond the allowance with 95 % confidence:
    // the gates measured accuracy on fixed test sets already; live labels
    // catch a clear regression on the live photos, not noise.
    const double drop = prod.map50 - cand.map50;
    const double low = drop_interval->low;
    checks.Add("accuracy map50", "drop <= " + Fixed(p.max_accuracy_drop, 3) + " at 95 % confidence",
               Fixed(cand.map50, 3) + " vs production " + Fixed(prod.map50, 3) + " on " +
                   std::to_string(cand.labelled) + " and " + std::to_string(prod.labelled) +
                   " labels" + (r.mode == kRolloutShadow ? " (the same photos)" : "") + ", drop " +
                   Fixed(drop, 3) + ", 90 % interval [" + Fixed(low, 3) + ", " +
                   Fixed(drop_interval->high, 3) + "]",
               low <= p.max_accuracy_drop, p.max_accuracy_drop - low);
  }
  if (r.mode == kRolloutShadow && p.min_agreement > 0) {
    if (cand.agreement < 0) {
      checks.Skip("agreement", "no shadow answers yet");
    } else {
      checks.Add("agreement", ">= " + Fixed(p.min_agreement, 3), Fixed(cand.agreement, 3),
                 cand.agreement >= p.min_agreement, cand.agreement - p.min_agreement);
    }
  }
}

}  // namespace

Result<RolloutReport> CompareArms(Workspace& ws, const Rollout& r, int64_t now_ms) {
  RolloutReport out;
  out.from_ms = r.stage_started_at_ms;
  out.to_ms = now_ms;
  const int64_t from = out.from_ms, to = out.to_ms;
  ArmFigures &prod = out.production, &cand = out.candidate;
  prod.model_version = r.baseline_version;
  cand.model_version = r.candidate_version;
  ASSIGN_OR_RETURN(auto registry, Registry::Open(ws));
  ASSIGN_OR_RETURN(ModelVersion prod_v,
                   registry->Get(ModelRef{r.model_name, r.baseline_version, ""}));
  ASSIGN_OR_RETURN(ModelVersion cand_v,
                   registry->Get(ModelRef{r.model_name, r.candidate_version, ""}));
  // Production's failures: its 5xx answers, from the servers' samples.
  ASSIGN_OR_RETURN(auto samples, ListServiceSamples(ws, r.model_name, from - kSampleMarginMs,
                                                    to + kSampleMarginMs));
  const ServiceFigures service = ServiceFiguresBetween(samples, from, to);
  if (service.known && service.requests > 0) {
    prod.failures = service.errors_5xx;
    prod.error_rate = static_cast<double>(service.errors_5xx) / service.requests;
  }
  ASSIGN_OR_RETURN(cand.failures, CountFailures(ws, r.id, from, to));
  ASSIGN_OR_RETURN(auto prod_labelled,
                   RecentLabelled(ws, r.model_name, r.baseline_version, from, to, kMaxLabels));
  std::vector<LabelledPrediction> cand_labelled;
  Answers prod_answers, cand_answers;
  if (r.mode == kRolloutCanary) {
    ASSIGN_OR_RETURN(prod_answers, LoggedAnswers(ws, r, r.baseline_version, from, to));
    ASSIGN_OR_RETURN(cand_answers, LoggedAnswers(ws, r, r.candidate_version, from, to));
    ASSIGN_OR_RETURN(cand_labelled,
                     RecentLabelled(ws, r.model_name, r.candidate_version, from, to, kMaxLabels));
  } else {
    // Both arms on the same requests: production's answers to the
    // requests the candidate scored, inference time against inference time.
    ASSIGN_OR_RETURN(
        auto rows,
        ws.db().Query("SELECT s.prediction_id, s.inference_ms, s.detections_json, s.agreement, "
                      "p.inference_ms, p.detections_json FROM shadow_predictions s "
                      "JOIN predictions p ON p.id = s.prediction_id WHERE s.rollout = ? AND "
                      "s.at_ms >= ? AND s.at_ms <= ? AND s.error = '' ORDER BY s.at_ms, s.id",
                      {r.id, from, to}));
    std::map<std::string, const std::vector<LoggedDetection>*> shadow;
    double agreement = 0;
    for (const SqlRow& row : rows) {
      const std::string id = row.Text(0);
      ASSIGN_OR_RETURN(auto c, Detections(row.Text(2), "shadow answer to " + id));
      ASSIGN_OR_RETURN(auto p, Detections(row.Text(5), "prediction " + id));
      cand_answers.Add(id, row.Real(1), std::move(c));
      prod_answers.Add(id, row.Real(4), std::move(p));
      agreement += row.Real(3);
    }
    if (!rows.empty()) cand.agreement = agreement / static_cast<double>(rows.size());
    for (size_t i = 0; i < cand_answers.ids.size(); ++i) {
      shadow[cand_answers.ids[i]] = &cand_answers.detections[i];
    }
    std::vector<LabelledPrediction> both;
    for (LabelledPrediction& l : prod_labelled) {
      auto it = shadow.find(l.prediction.record.id);
      if (it == shadow.end()) continue;
      LabelledPrediction c = l;
      c.prediction.record.detections = *it->second;
      c.prediction.record.model_version = r.candidate_version;
      cand_labelled.push_back(std::move(c));
      both.push_back(std::move(l));
    }
    prod_labelled = std::move(both);
  }
  prod.requests = static_cast<int64_t>(prod_answers.ms.size());
  cand.requests = static_cast<int64_t>(cand_answers.ms.size()) + cand.failures;
  cand.error_rate = cand.requests > 0 ? static_cast<double>(cand.failures) / cand.requests : 0;
  Summarize(prod_answers, prod);
  Summarize(cand_answers, cand);
  Accuracy(prod_labelled, prod_v.spec.classes, prod);
  Accuracy(cand_labelled, cand_v.spec.classes, cand);
  out.enough =
      cand.requests >= r.policy.min_requests && (to - from) >= r.policy.stage_seconds * 1000;
  std::optional<Interval> drop_interval;
  if (cand.labelled >= std::max(1, r.policy.min_labels) &&
      prod.labelled >= std::max(1, r.policy.min_labels) && cand.map50 >= 0 && prod.map50 >= 0 &&
      out.enough) {
    drop_interval =
        Map50DifferenceInterval(prod_labelled, prod_v.spec.classes, cand_labelled,
                                cand_v.spec.classes, r.mode == kRolloutShadow, kIntervalTail);
  }
  Check(r, drop_interval, out);
  return out;
}

double AnswerAgreement(const std::vector<LoggedDetection>& production,
                       const std::vector<LoggedDetection>& candidate) {
  if (production.empty() && candidate.empty()) return 1;
  if (production.empty() || candidate.empty()) return 0;
  std::vector<std::string> classes;
  auto id_of = [&](const std::string& name) {
    auto it = std::find(classes.begin(), classes.end(), name);
    if (it != classes.end()) return static_cast<int>(it - classes.begin());
    classes.push_back(name);
    return static_cast<int>(classes.size()) - 1;
  };
  EvalImage image;
  for (const LoggedDetection& d : production) {
    image.truth.push_back({id_of(d.class_name), static_cast<float>(d.x1), static_cast<float>(d.y1),
                           static_cast<float>(d.x2), static_cast<float>(d.y2), false});
  }
  for (const LoggedDetection& d : candidate) {
    image.detections.push_back({id_of(d.class_name), static_cast<float>(d.score),
                                static_cast<float>(d.x1), static_cast<float>(d.y1),
                                static_cast<float>(d.x2), static_cast<float>(d.y2)});
  }
  EvalOptions options;
  options.operating_confidence = 0;  // every answered box counts
  options.match_iou = 0.5f;
  options.max_detections = std::max<int>(100, static_cast<int>(candidate.size()));
  return Evaluate({image}, classes, options).f1;
}

Status RecordShadowAnswer(Workspace& ws, const ShadowAnswer& a) {
  const std::string detections = DetectionsToJson(a.detections).dump();
  const int64_t at_ms = a.at_ms ? a.at_ms : NowMs();
  Database& db = ws.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto next,
                     db.Query("SELECT COALESCE(MAX(id), 0) + 1 FROM shadow_predictions"));
    return db.Exec(
        "INSERT INTO shadow_predictions (id, rollout, prediction_id, at_ms, model_version, "
        "detections_json, inference_ms, agreement, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {next.at(0).Int(0), a.rollout, a.prediction_id, at_ms, int64_t{a.model_version}, detections,
         a.inference_ms, a.agreement, a.error});
  });
}

Result<std::vector<ShadowAnswer>> ListShadowAnswers(Workspace& ws, int64_t rollout, int limit) {
  std::string sql =
      "SELECT rollout, prediction_id, at_ms, model_version, detections_json, inference_ms, "
      "agreement, error FROM shadow_predictions WHERE rollout = ? ORDER BY at_ms, id";
  std::vector<SqlValue> params = {rollout};
  if (limit > 0) {
    sql += " LIMIT ?";
    params.emplace_back(int64_t{limit});
  }
  ASSIGN_OR_RETURN(auto rows, ws.db().Query(sql, params));
  std::vector<ShadowAnswer> out;
  for (const SqlRow& row : rows) {
    ShadowAnswer a;
    a.rollout = row.Int(0);
    a.prediction_id = row.Text(1);
    a.at_ms = row.Int(2);
    a.model_version = static_cast<int>(row.Int(3));
    ASSIGN_OR_RETURN(a.detections, Detections(row.Text(4), "shadow answer to " + a.prediction_id));
    a.inference_ms = row.Real(5);
    a.agreement = row.Real(6);
    a.error = row.Text(7);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace detops
