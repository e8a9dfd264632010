// detops runs ls | show | compare

#include <algorithm>
#include <cmath>
#include <iostream>
#include <type_traits>

#include "cli/commands.h"
#include "cli/output.h"
#include "track/track.h"

namespace detops::cli {
namespace {

std::string Num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string Bytes(int64_t n) {
  char buf[32];
  if (n < 1024) return std::to_string(n) + " B";
  if (n < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
  } else if (n < 1024LL * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", n / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", n / (1024.0 * 1024 * 1024));
  }
  return buf;
}

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

Result<std::unique_ptr<Tracker>> OpenTracker(Workspace& ws) { return Tracker::Open(ws); }

// The metric columns of `runs ls`: those asked for, else up to three keys,
// those named in the filter or sort first, then the most common.
std::vector<std::string> MetricColumns(const std::vector<RunInfo>& runs, const std::string& asked,
                                       const std::string& query_text) {
  std::vector<std::string> cols;
  if (!asked.empty()) {
    size_t start = 0;
    while (start <= asked.size()) {
      size_t comma = std::min(asked.find(',', start), asked.size());
      std::string k = asked.substr(start, comma - start);
      if (!k.empty()) cols.push_back(k);
      start = comma + 1;
    }
    return cols;
  }
  std::map<std::string, int> freq;
  for (const RunInfo& r : runs)
    for (const auto& [k, v] : r.final_metrics) ++freq[k];
  std::vector<std::pair<std::string, int>> ranked(freq.begin(), freq.end());
  auto mentioned = [&](const std::string& k) {
    return query_text.find("metrics." + k) != std::string::npos;
  };
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    if (mentioned(a.first) != mentioned(b.first)) return mentioned(a.first);
    return a.second > b.second;
  });
  for (size_t i = 0; i < ranked.size() && i < 3; ++i) cols.push_back(ranked[i].first);
  return cols;
}

struct ListArgs {
  RunQuery query;
  std::string metrics;
  bool json = false;
};

int RunList(Globals& g, const ListArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto tracker = OpenTracker(**ws);
  if (!tracker.ok()) return Fail(tracker.status());
  auto runs = (*tracker)->ListRuns(a.query);
  if (!runs.ok()) return Fail(runs.status());
  if (a.json) {
    Json out = Json::array();
    for (const RunInfo& r : *runs) out.push_back(RunToJson(r));
    PrintJson(out);
    return kExitOk;
  }
  if (runs->empty()) {
    std::cout << (a.query.filter.empty() ? "no runs yet: `detops train` creates one\n"
                                         : "no runs match the filter\n");
    return kExitOk;
  }
  std::vector<std::string> cols =
      MetricColumns(*runs, a.metrics, a.query.filter + " " + a.query.sort);
  std::vector<std::string> header = {"ID", "NAME", "KIND", "STATUS", "DATASET", "CREATED"};
  for (const std::string& c : cols) header.push_back(c);
  Table t(header);
  for (const RunInfo& r : *runs) {
    std::vector<std::string> row = {r.id,
                                    r.name,
                                    r.kind,
                                    RunStatusName(r.status),
                                    Dash(r.dataset_version),
                                    r.created_at.substr(0, 19)};
    for (const std::string& c : cols) {
      auto it = r.final_metrics.find(c);
      row.push_back(it == r.final_metrics.end() ? "-" : Num(it->second));
    }
    t.Add(std::move(row));
  }
  std::cout << t.Render();
  return kExitOk;
}

int RunShow(Globals& g, const std::string& ref, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto tracker = OpenTracker(**ws);
  if (!tracker.ok()) return Fail(tracker.status());
  auto run = (*tracker)->GetRun(ref);
  if (!run.ok()) return Fail(run.status());
  auto series = (*tracker)->MetricSummaries(run->id);
  if (!series.ok()) return Fail(series.status());
  if (json) {
    Json j = RunToJson(*run);
    Json s = Json::array();
    for (const MetricSummary& m : *series) s.push_back(MetricSummaryToJson(m));
    j["metric_series"] = s;
    PrintJson(j);
    return kExitOk;
  }
  const RunInfo& r = *run;
  const RunEnvironment& e = r.env;
  std::cout << r.kind << " run " << r.name << "  id " << r.id << "\n"
            << "  status    " << RunStatusName(r.status) << "\n"
            << "  created   " << r.created_at << "\n"
            << "  ended     " << Dash(r.ended_at) << "\n"
            << "  dataset   " << Dash(r.dataset_version) << "\n"
            << "  parent    " << Dash(r.parent_run) << "\n"
            << "  env       commit " << Dash(e.git_commit);
  if (!e.detops_version.empty()) std::cout << ", detops " << e.detops_version;
  if (!e.torch_version.empty()) std::cout << ", torch " << e.torch_version;
  std::cout << "\n            host " << Dash(e.host) << ", " << Dash(e.os) << "\n"
            << "            device " << Dash(e.device) << ", threads " << e.threads << "/" << e.cpus
            << "\n";
  auto kv = [](const char* title, const std::map<std::string, std::string>& m) {
    if (m.empty()) return;
    Table t({title, "VALUE"});
    for (const auto& [k, v] : m) t.Add({k, v});
    std::cout << "\n" << t.Render();
  };
  kv("PARAM", r.params);
  kv("TAG", r.tags);
  if (!series->empty()) {
    Table t({"METRIC", "POINTS", "LAST STEP", "LAST", "MIN", "MAX"});
    for (const MetricSummary& m : *series) {
      t.Add({m.key, std::to_string(m.count), std::to_string(m.last_step), Num(m.last), Num(m.min),
             Num(m.max)});
    }
    std::cout << "\n" << t.Render();
  }
  if (!r.artifacts.empty()) {
    Table t({"ARTIFACT", "SIZE", "BLOB"});
    for (const Artifact& a : r.artifacts) t.Add({a.name, Bytes(a.size), a.blob.substr(0, 12)});
    std::cout << "\n" << t.Render();
  }
  return kExitOk;
}

int RunCompare(Globals& g, const std::vector<std::string>& refs, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto tracker = OpenTracker(**ws);
  if (!tracker.ok()) return Fail(tracker.status());
  std::vector<RunInfo> runs;
  for (const std::string& ref : refs) {
    auto r = (*tracker)->GetRun(ref);
    if (!r.ok()) return Fail(r.status());
    runs.push_back(std::move(*r));
  }
  RunComparison c = CompareRuns(runs);
  if (json) {
    PrintJson(ComparisonToJson(c));
    return kExitOk;
  }
  // Names and ids on two header rows, so that neither is cut in a narrow column.
  std::vector<std::string> names = {"", "RUN"}, ids = {"", "ID"};
  names.insert(names.end(), c.names.begin(), c.names.end());
  ids.insert(ids.end(), c.ids.begin(), c.ids.end());
  Table t(names, /*label_columns=*/2);  // the mark and the key stay with every block
  t.Add(ids);
  std::vector<std::string> left_out;
  auto section = [&](const std::string& prefix, const auto& rows, auto&& cell) {
    for (const auto& row : rows) {
      if constexpr (std::is_same_v<std::decay_t<decltype(row)>, ComparisonRow>) {
        if (row.repeats_others) {
          left_out.push_back(prefix + row.key);
          continue;
        }
      }
      std::vector<std::string> line = {row.differs ? "*" : "", prefix + row.key};
      for (const auto& v : row.values) line.push_back(v ? cell(*v) : "-");
      t.Add(std::move(line));
    }
  };
  auto text = [](const std::string& s) { return s; };
  section("", c.attributes, text);
  section("params.", c.params, text);
  section("tags.", c.tags, text);
  section("metrics.", c.metrics, [](double v) { return Num(v); });
  const size_t width = TerminalWidth();
  Table::Layout layout = t.Fit(width);
  std::cout << layout.text;
  size_t n = c.DifferingKeys().size();
  std::cout << "\n" << n << " param/metric key(s) differ (marked *)\n";
  // Footer lines stay under kMinTableWidth, like the table.
  for (const std::string& key : left_out) {
    std::cout << "left out: " << key << " (repeats the other params)\n";
  }
  if (layout.cut_cells > 0) {
    std::cout << layout.cut_cells << " value(s) cut to fit " << width
              << " columns (marked \u2026)\n";
  }
  if (layout.cut_cells > 0 || !left_out.empty()) {
    std::cout << "COLUMNS sets the width; --json prints every value in full\n";
  }
  return kExitOk;
}

}  // namespace

void AddRunsCommands(CLI::App& app, Globals& g) {
  CLI::App* runs = app.add_subcommand(
      "runs", "Experiment runs made by train and eval: list, inspect and compare them");
  runs->require_subcommand(1);

  auto* ls = runs->add_subcommand(
      "ls",
      "List runs, newest first, with a few final metrics.\n"
      "Filter examples:\n"
      "  \"metrics.map50 > 0.5 and params.model = 'n'\"\n"
      "  \"kind = 'train' and status = 'finished' and tags.forced != 'true'\"\n"
      "Fields: " +
          RunFieldNames() +
          "; operators = != < <= > >=, and, or, not, parentheses. A missing key matches only "
          "!=.");
  auto la = std::make_shared<ListArgs>();
  ls->add_option("--filter", la->query.filter, "filter expression (see above)");
  ls->add_option("--sort", la->query.sort,
                 "FIELD [asc|desc], ... e.g. \"metrics.map50 desc\" (default: newest first)");
  ls->add_option("--limit", la->query.limit, "show at most N runs (0: all)")
      ->check(CLI::NonNegativeNumber);
  ls->add_option("--metrics", la->metrics,
                 "comma-separated metric keys to show as columns (default: up to 3)");
  ls->add_flag("--json", la->json, "print JSON (every field of every run)");
  ls->callback([&g, la] { g.exit_code = RunList(g, *la); });

  auto* show = runs->add_subcommand(
      "show", "Show a run: params, tags, final metrics with point counts, environment, artifacts");
  auto show_ref = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  show->add_option("run", *show_ref, "run id, unique id prefix (4+ chars) or name")->required();
  show->add_flag("--json", *show_json, "print JSON");
  show->callback([&g, show_ref, show_json] { g.exit_code = RunShow(g, *show_ref, *show_json); });

  auto* cmp = runs->add_subcommand(
      "compare", "Runs side by side: params and final metrics; rows that differ are marked *");
  auto cmp_refs = std::make_shared<std::vector<std::string>>();
  auto cmp_json = std::make_shared<bool>(false);
  cmp->add_option("runs", *cmp_refs, "two or more run ids, prefixes or names")
      ->required()
      ->expected(2, -1);
  cmp->add_flag("--json", *cmp_json, "print JSON");
  cmp->callback([&g, cmp_refs, cmp_json] { g.exit_code = RunCompare(g, *cmp_refs, *cmp_json); });
}

}  // namespace detops::cli
