// Runs side by side.

#include <cmath>
#include <set>

#include "track/track.h"

namespace detops {
namespace {

template <typename T>
bool AllEqual(const std::vector<std::optional<T>>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i].has_value() != v[0].has_value()) return false;
    if (!v[i]) continue;
    if constexpr (std::is_same_v<T, double>) {
      if (std::isnan(*v[i]) && std::isnan(*v[0])) continue;
    }
    if (*v[i] != *v[0]) return false;
  }
  return true;
}

std::vector<ComparisonRow> CompareMaps(
    const std::vector<const std::map<std::string, std::string>*>& maps) {
  std::set<std::string> keys;
  for (const auto* m : maps)
    for (const auto& [k, v] : *m) keys.insert(k);
  std::vector<ComparisonRow> rows;
  for (const std::string& k : keys) {
    ComparisonRow row;
    row.key = k;
    for (const auto* m : maps) {
      auto it = m->find(k);
      row.values.push_back(it == m->end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    row.differs = !AllEqual(row.values);
    rows.push_back(std::move(row));
  }
  return rows;
}

// True when `value` is a JSON object whose every leaf is also a param of
// the run, under its dotted path and with the same text: the train job's
// options_json, kept whole so a run can be resumed.
bool RepeatsOtherParams(const std::string& value,
                        const std::map<std::string, std::string>& params) {
  if (value.empty() || value.front() != '{') return false;
  auto j = ParseJson(value, "param");
  if (!j.ok() || !j->is_object() || j->empty()) return false;
  const Json flat = j->flatten();
  for (const auto& [pointer, leaf] : flat.items()) {
    std::string key = pointer.substr(1);  // "/augment/mosaic" -> "augment.mosaic"
    for (char& c : key) c = c == '/' ? '.' : c;
    auto it = params.find(key);
    if (it == params.end() ||
        it->second != (leaf.is_string() ? leaf.get<std::string>() : leaf.dump())) {
      return false;
    }
  }
  return true;
}

Json Cell(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }
Json Cell(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? Json(*v) : Json(nullptr);
}

template <typename Row>
Json RowsToJson(const std::vector<Row>& rows) {
  Json out = Json::array();
  for (const Row& r : rows) {
    Json values = Json::array();
    for (const auto& v : r.values) values.push_back(Cell(v));
    Json row = {{"key", r.key}, {"values", values}, {"differs", r.differs}};
    if constexpr (std::is_same_v<Row, ComparisonRow>) {
      if (r.repeats_others) row["repeats_others"] = true;
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

RunComparison CompareRuns(const std::vector<RunInfo>& runs) {
  RunComparison c;
  std::vector<std::map<std::string, std::string>> attrs;
  std::vector<const std::map<std::string, std::string>*> params, tags, attr_ptrs;
  std::set<std::string> metric_keys;
  for (const RunInfo& r : runs) {
    c.ids.push_back(r.id);
    c.names.push_back(r.name);
    // Times are left out: they always differ.
    std::map<std::string, std::string> a = {{"kind", r.kind}, {"status", RunStatusName(r.status)}};
    auto set = [&](const char* k, const std::string& v) {
      if (!v.empty()) a[k] = v;
    };
    set("dataset", r.dataset_version);
    set("parent", r.parent_run);
    set("env.git_commit", r.env.git_commit);
    set("env.host", r.env.host);
    set("env.device", r.env.device);
    set("env.torch_version", r.env.torch_version);
    if (r.env.threads) a["env.threads"] = std::to_string(r.env.threads);
    attrs.push_back(std::move(a));
    params.push_back(&r.params);
    tags.push_back(&r.tags);
    for (const auto& [k, v] : r.final_metrics) metric_keys.insert(k);
  }
  for (const auto& a : attrs) attr_ptrs.push_back(&a);
  c.attributes = CompareMaps(attr_ptrs);
  c.params = CompareMaps(params);
  for (ComparisonRow& row : c.params) {
    row.repeats_others = true;
    for (size_t i = 0; i < runs.size(); ++i) {
      if (row.values[i] && !RepeatsOtherParams(*row.values[i], runs[i].params)) {
        row.repeats_others = false;
      }
    }
  }
  c.tags = CompareMaps(tags);
  for (const std::string& k : metric_keys) {
    MetricComparisonRow row;
    row.key = k;
    for (const RunInfo& r : runs) {
      auto it = r.final_metrics.find(k);
      row.values.push_back(it == r.final_metrics.end() ? std::nullopt
                                                       : std::optional<double>(it->second));
    }
    row.differs = !AllEqual(row.values);
    c.metrics.push_back(std::move(row));
  }
  return c;
}

std::vector<std::string> RunComparison::DifferingKeys() const {
  std::vector<std::string> out;
  for (const auto& r : params)
    if (r.differs) out.push_back("params." + r.key);
  for (const auto& r : metrics)
    if (r.differs) out.push_back("metrics." + r.key);
  return out;
}

Json ComparisonToJson(const RunComparison& c) {
  Json runs = Json::array();
  for (size_t i = 0; i < c.ids.size(); ++i)
    runs.push_back({{"id", c.ids[i]}, {"name", c.names[i]}});
  return {{"runs", runs},
          {"attributes", RowsToJson(c.attributes)},
          {"params", RowsToJson(c.params)},
          {"tags", RowsToJson(c.tags)},
          {"metrics", RowsToJson(c.metrics)},
          {"differing", c.DifferingKeys()}};
}

}  // namespace detops
