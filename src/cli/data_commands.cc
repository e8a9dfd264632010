// detops data import | ls | show | diff | validate | report | export | derive

#include <algorithm>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/output.h"
#include "data/data.h"
#include "data/derive.h"

namespace detops::cli {
namespace {

std::string ClassList(const DatasetStats& s, const SplitCounts& c) {
  std::string out;
  for (size_t i = 0; i < s.classes.size(); ++i) {
    if (!out.empty()) out += ", ";
    out += s.classes[i] + " " +
           std::to_string(i < c.boxes_per_class.size() ? c.boxes_per_class[i] : 0);
  }
  return out;
}

Json VersionToJson(const VersionInfo& v) {
  return {{"ref", v.Ref()},
          {"dataset", v.dataset},
          {"version", v.version},
          {"id", v.manifest_sha},
          {"parent", v.parent_version > 0 ? Json(v.ParentRef()) : Json(nullptr)},
          {"source", v.source},
          {"format", v.format},
          {"created_at", v.created_at},
          {"validation", v.validation_status},
          {"stats", StatsToJson(v.stats)},
          {"import_issues", IssuesToJson(v.issues)}};
}

// "  derived     fix-leakage (groups 3, moved 4); ...\n"; empty when not derived.
std::string DerivationText(const std::vector<DeriveStep>& steps) {
  if (steps.empty()) return "";
  std::string out = "  derived     ";
  for (size_t i = 0; i < steps.size(); ++i) {
    out += (i ? "; " : "") + steps[i].op + " " + steps[i].params.dump() + " (";
    bool first = true;
    for (const auto& [k, n] : steps[i].counts) {
      out += (first ? "" : ", ") + k + " " + std::to_string(n);
      first = false;
    }
    out += ")";
  }
  return out + "\n";
}

// Resolves "name[@v]" in an open workspace.
Result<VersionInfo> Resolve(Workspace& ws, const std::string& text) {
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(text));
  return ResolveVersion(ws, ref);
}

Result<SplitRatios> ParseRatios(const std::string& text) {
  SplitRatios r;
  double v[3];
  char c1 = 0, c2 = 0;
  std::istringstream in(text);
  if (!(in >> v[0] >> c1 >> v[1] >> c2 >> v[2]) || c1 != ',' || c2 != ',' || v[0] < 0 || v[1] < 0 ||
      v[2] < 0 || v[0] + v[1] + v[2] <= 0) {
    return Status::InvalidInput("--split '" + text + "': expected TRAIN,VAL,TEST like 0.8,0.1,0.1");
  }
  r.train = v[0];
  r.val = v[1];
  r.test = v[2];
  return r;
}

struct ImportArgs {
  std::string name, path, format = "auto", split = "0.8,0.1,0.1", class_map, drop_classes;
  int threads = 2;
  bool json = false;
};

int RunImport(Globals& g, const ImportArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto ratios = ParseRatios(a.split);
  if (!ratios.ok()) return Fail(ratios.status());
  ImportOptions o;
  o.name = a.name;
  o.source = a.path;
  o.format = a.format;
  o.ratios = *ratios;
  o.threads = a.threads;
  auto class_map = ParseClassMap(a.class_map, a.drop_classes);
  if (!class_map.ok()) return Fail(class_map.status());
  o.class_map = *class_map;
  Progress progress("hashing");
  o.progress = [&](size_t d, size_t t) { progress.Update(d, t); };
  auto r = ImportDataset(**ws, o);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  const VersionInfo& v = r->version;
  if (a.json) {
    PrintJson({{"created", r->created},
               {"images_hashed", r->images_hashed},
               {"version", VersionToJson(v)}});
    return kExitOk;
  }
  if (r->created) {
    std::cout << "imported " << v.Ref() << "  id " << v.ShortId() << "  (" << v.format << " from "
              << v.source << ")\n";
  } else {
    std::cout << "unchanged: " << v.Ref() << " already holds this content (id " << v.ShortId()
              << "); no new version\n";
  }
  std::cout << "  " << v.stats.total.images << " images (" << r->images_hashed << " read, rest "
            << "from cache), " << v.stats.total.boxes << " boxes, " << v.stats.classes.size()
            << " classes";
  if (v.parent_version > 0) std::cout << ", parent " << v.ParentRef();
  std::cout << "\n";
  if (!v.issues.empty()) {
    std::cout << "  " << v.issues.size() << " problem(s) found while reading, e.g. "
              << v.issues[0].file
              << (v.issues[0].line ? ":" + std::to_string(v.issues[0].line) : "") << ": "
              << v.issues[0].message << "\n  run `detops data validate " << v.Ref()
              << "` for the full report\n";
  }
  return kExitOk;
}

int RunList(Globals& g, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto versions = ListVersions(**ws);
  if (!versions.ok()) return Fail(versions.status());
  if (json) {
    Json out = Json::array();
    for (const VersionInfo& v : *versions) out.push_back(VersionToJson(v));
    PrintJson(out);
    return kExitOk;
  }
  if (versions->empty()) {
    std::cout << "no datasets yet: `detops data import NAME FOLDER`\n";
    return kExitOk;
  }
  Table t({"VERSION", "ID", "IMAGES", "BOXES", "CLASSES", "VALIDATION", "CREATED", "SOURCE"});
  for (const VersionInfo& v : *versions) {
    t.Add({v.Ref(), v.ShortId(), std::to_string(v.stats.total.images),
           std::to_string(v.stats.total.boxes), std::to_string(v.stats.classes.size()),
           v.validation_status, v.created_at.substr(0, 19), v.source});
  }
  std::cout << t.Render();
  return kExitOk;
}

int RunShow(Globals& g, const std::string& ref, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto v = Resolve(**ws, ref);
  if (!v.ok()) return Fail(v.status());
  auto derivation = LoadDerivation(**ws, *v);
  if (!derivation.ok()) return Fail(derivation.status());
  if (json) {
    Json j = VersionToJson(*v);
    j["derivation"] = StepsToJson(*derivation);
    PrintJson(j);
    return kExitOk;
  }
  const DatasetStats& s = v->stats;
  std::cout << v->Ref() << "  id " << v->manifest_sha << "\n"
            << "  source      " << v->source << " (" << v->format << ")\n"
            << "  created     " << v->created_at << "\n"
            << "  parent      " << (v->parent_version ? v->ParentRef() : "-") << "\n"
            << DerivationText(*derivation) << "  validation  " << v->validation_status << "\n"
            << "  classes     " << s.classes.size() << ": " << ClassList(s, s.total) << "\n\n";
  Table t({"SPLIT", "IMAGES", "BOXES", "LABELLED", "NO DAMAGE", "BOXES PER CLASS"});
  for (const char* split : {"train", "val", "test"}) {
    auto it = s.splits.find(split);
    if (it == s.splits.end()) continue;
    const SplitCounts& c = it->second;
    t.Add({split, std::to_string(c.images), std::to_string(c.boxes), std::to_string(c.labelled),
           std::to_string(c.background), ClassList(s, c)});
  }
  t.Add({"total", std::to_string(s.total.images), std::to_string(s.total.boxes),
         std::to_string(s.total.labelled), std::to_string(s.total.background),
         ClassList(s, s.total)});
  std::cout << t.Render() << "\n  labelled    " << Percent(s.labelled_fraction) << "\n";
  std::cout << "  boxes/image";
  for (const char* k : {"0", "1", "2", "3", "4", "5+"}) {
    auto it = s.boxes_per_image.find(k);
    std::cout << "  " << k << ":" << (it == s.boxes_per_image.end() ? 0 : it->second);
  }
  std::cout << "\n  box sizes  ";
  for (const char* k : {"small", "medium", "large"}) {
    auto it = s.box_sizes.find(k);
    std::cout << "  " << k << ":" << (it == s.box_sizes.end() ? 0 : it->second);
  }
  std::cout << "  (COCO areas)\n  image sizes  " << s.min_width << "-" << s.max_width << " x "
            << s.min_height << "-" << s.max_height << ";";
  for (const auto& [size, n] : s.image_sizes) std::cout << " " << size << ":" << n;
  std::cout << "\n";
  if (!v->issues.empty()) {
    std::cout << "  import problems: " << v->issues.size() << " (see `detops data validate "
              << v->Ref() << "`)\n";
    // The first few, so that what the reader guessed (a split folder, class
    // names from a parent data.yaml) shows without a validation run.
    constexpr size_t kShown = 3;
    for (size_t i = 0; i < std::min(v->issues.size(), kShown); ++i) {
      const SourceIssue& issue = v->issues[i];
      std::cout << "    " << issue.file << (issue.line ? ":" + std::to_string(issue.line) : "")
                << ": " << issue.kind << ": " << issue.message << "\n";
    }
    if (v->issues.size() > kShown) std::cout << "    ...\n";
  }
  return kExitOk;
}

int RunDiff(Globals& g, const std::string& a, const std::string& b, bool json) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto va = Resolve(**ws, a);
  if (!va.ok()) return Fail(va.status());
  auto vb = Resolve(**ws, b);
  if (!vb.ok()) return Fail(vb.status());
  auto ma = LoadManifest(**ws, *va);
  if (!ma.ok()) return Fail(ma.status());
  auto mb = LoadManifest(**ws, *vb);
  if (!mb.ok()) return Fail(mb.status());
  DatasetDiff d = DiffManifests(*ma, *mb);
  auto changes = [](const std::vector<ImageChange>& v) {
    Json out = Json::array();
    for (const ImageChange& c : v) out.push_back({{"image", c.name}, {"detail", c.detail}});
    return out;
  };
  if (json) {
    Json classes = Json::object();
    for (const auto& [k, v] : d.class_counts) classes[k] = {{"a", v.first}, {"b", v.second}};
    PrintJson({{"a", va->Ref()},
               {"b", vb->Ref()},
               {"images_a", d.images_a},
               {"images_b", d.images_b},
               {"added", changes(d.added)},
               {"removed", changes(d.removed)},
               {"relabelled", changes(d.relabelled)},
               {"moved", changes(d.moved)},
               {"class_counts", classes}});
    return kExitOk;
  }
  std::cout << va->Ref() << " -> " << vb->Ref() << ": " << d.images_a << " -> " << d.images_b
            << " images; " << d.added.size() << " added, " << d.removed.size() << " removed, "
            << d.relabelled.size() << " relabelled, " << d.moved.size()
            << " moved between splits\n";
  auto list = [](const char* what, const std::vector<ImageChange>& v) {
    for (size_t i = 0; i < v.size() && i < 20; ++i) {
      std::cout << "  " << what << " " << v[i].name << "  (" << v[i].detail << ")\n";
    }
    if (v.size() > 20) std::cout << "  ... and " << v.size() - 20 << " more " << what << "\n";
  };
  list("+", d.added);
  list("-", d.removed);
  list("~", d.relabelled);
  list(">", d.moved);
  Table t({"CLASS", "BOXES A", "BOXES B", "CHANGE"});
  for (const auto& [k, v] : d.class_counts) {
    int delta = v.second - v.first;
    t.Add({k, std::to_string(v.first), std::to_string(v.second),
           (delta > 0 ? "+" : "") + std::to_string(delta)});
  }
  std::cout << "\n" << t.Render();
  return kExitOk;
}

struct ValidateArgs {
  std::string ref, suite;
  int threads = 2;
  size_t max_findings = 5;
  bool json = false;
};

int RunValidate(Globals& g, const ValidateArgs& a) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto v = Resolve(**ws, a.ref);
  if (!v.ok()) return Fail(v.status());
  ValidateOptions o;
  if (!a.suite.empty()) {
    auto suite = LoadSuite(a.suite);
    if (!suite.ok()) return Fail(suite.status());
    o.suite = *suite;
  }
  o.threads = a.threads;
  Progress progress("profiling");
  o.progress = [&](size_t d, size_t t) { progress.Update(d, t); };
  auto report = ValidateVersion(**ws, *v, o);
  progress.Finish();
  if (!report.ok()) return Fail(report.status());
  if (a.json) {
    Json j = ReportToJson(*report);
    j["version"] = v->Ref();
    PrintJson(j);
  } else {
    std::cout << v->Ref() << " against suite '" << report->suite << "'\n\n"
              << ReportToTable(*report, a.max_findings) << "\n"
              << (report->trainable() ? "trainable" : "NOT trainable") << ": "
              << report->failed_errors() << " error(s), " << report->failed_warnings()
              << " warning(s)\n";
    std::string fix = DeriveFixCommand(*report, v->Ref());
    if (!fix.empty()) std::cout << "fix: " << fix << "\n";
  }
  return report->trainable() ? kExitOk : kExitValidation;
}

int RunReport(Globals& g, const std::string& ref, bool json, size_t max_findings) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto v = Resolve(**ws, ref);
  if (!v.ok()) return Fail(v.status());
  auto report = LatestReport(**ws, *v);
  if (!report.ok()) return Fail(report.status());
  if (json) {
    PrintJson(ReportToJson(*report));
  } else {
    std::cout << ReportToTable(*report, max_findings);
    std::string fix = DeriveFixCommand(*report, v->Ref());
    if (!fix.empty()) std::cout << "fix: " << fix << "\n";
  }
  return kExitOk;
}

int RunExport(Globals& g, const std::string& ref, const std::string& out, const std::string& fmt) {
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  auto v = Resolve(**ws, ref);
  if (!v.ok()) return Fail(v.status());
  Status s = ExportDataset(**ws, *v, out, fmt);
  if (!s.ok()) return Fail(s);
  std::cout << "exported " << v->Ref() << " (" << v->stats.total.images << " images) to " << out
            << " as " << fmt << "\n";
  return kExitOk;
}

struct DeriveArgs {
  std::string ref, name;
  uint64_t seed = 0;
  int threads = 2;
  bool json = false;
};

// The operations, in the order given: "--flag value", "--flag=value", or
// "--fix-leakage" alone.
Result<std::vector<DeriveOp>> ParseOps(const std::vector<std::string>& args) {
  std::vector<DeriveOp> ops;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      return Status::InvalidInput("unexpected argument '" + a + "' (operations start with --)");
    }
    std::string flag = a.substr(2), value;
    size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (flag != "fix-leakage") {
      if (i + 1 >= args.size()) return Status::InvalidInput(a + " needs a value");
      value = args[++i];
    }
    ASSIGN_OR_RETURN(DeriveOp op, ParseDeriveOp(flag, value));
    ops.push_back(std::move(op));
  }
  return ops;
}

int RunDerive(Globals& g, const DeriveArgs& a, const std::vector<std::string>& rest) {
  auto ops = ParseOps(rest);
  if (!ops.ok()) return Fail(ops.status());
  auto ws = OpenWorkspace(g);
  if (!ws.ok()) return Fail(ws.status());
  DeriveOptions o;
  o.from = a.ref;
  o.name = a.name;
  o.ops = *ops;
  o.seed = a.seed;
  o.threads = a.threads;
  Progress progress("profiling");
  o.progress = [&](size_t d, size_t t) { progress.Update(d, t); };
  auto r = DeriveDataset(**ws, o);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  const VersionInfo& v = r->version;
  if (a.json) {
    PrintJson({{"created", r->created},
               {"version", VersionToJson(v)},
               {"derivation", StepsToJson(r->steps)}});
    return kExitOk;
  }
  if (r->created) {
    std::cout << "derived " << v.Ref() << "  id " << v.ShortId() << "  from " << v.ParentRef()
              << ": " << v.stats.total.images << " images, " << v.stats.total.boxes << " boxes, "
              << v.stats.classes.size() << " classes\n";
  } else {
    std::cout << "unchanged: " << v.Ref() << " already holds this content (id " << v.ShortId()
              << "); no new version\n";
  }
  std::cout << DerivationText(r->steps);
  if (r->created) std::cout << "  next: detops data validate " << v.Ref() << "\n";
  return kExitOk;
}

}  // namespace

void AddDataCommands(CLI::App& app, Globals& g) {
  CLI::App* data = app.add_subcommand("data", "Import, inspect, validate and export datasets");
  data->require_subcommand(1);

  auto* imp = data->add_subcommand(
      "import",
      "Import a labelled image folder (YOLO/Ultralytics, COCO, Pascal VOC) as a new immutable "
      "version NAME@N; unchanged content makes no new version");
  auto ia = std::make_shared<ImportArgs>();
  imp->add_option("name", ia->name, "dataset name")->required();
  imp->add_option("path", ia->path, "source folder, data.yaml or COCO .json")->required();
  imp->add_option("--format", ia->format, "yolo | coco | voc | auto")
      ->check(CLI::IsMember({"yolo", "coco", "voc", "auto"}))
      ->capture_default_str();
  imp->add_option("--split", ia->split,
                  "TRAIN,VAL,TEST ratios for sources without splits (by content hash)")
      ->capture_default_str();
  imp->add_option("--threads", ia->threads, "hashing threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  imp->add_option("--class-map", ia->class_map,
                  "rename or merge classes as they come in: \"cizik=scratch,gocuk=dent,a=x,b=x\"");
  imp->add_option("--drop-classes", ia->drop_classes,
                  "drop the boxes of these classes as they come in: \"c1,c2\"");
  imp->add_flag("--json", ia->json, "print the result as JSON");
  imp->callback([&g, ia] { g.exit_code = RunImport(g, *ia); });

  auto* ls = data->add_subcommand("ls", "List dataset versions");
  auto ls_json = std::make_shared<bool>(false);
  ls->add_flag("--json", *ls_json, "print JSON");
  ls->callback([&g, ls_json] { g.exit_code = RunList(g, *ls_json); });

  auto* show = data->add_subcommand(
      "show", "Show a version: images and boxes per split, classes, boxes per image, sizes");
  auto show_ref = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  show->add_option("ref", *show_ref, "NAME or NAME@VERSION")->required();
  show->add_flag("--json", *show_json, "print JSON");
  show->callback([&g, show_ref, show_json] { g.exit_code = RunShow(g, *show_ref, *show_json); });

  auto* diff = data->add_subcommand(
      "diff", "What changed between two versions: images added, removed, relabelled, class counts");
  auto da = std::make_shared<std::string>(), db = std::make_shared<std::string>();
  auto diff_json = std::make_shared<bool>(false);
  diff->add_option("a", *da, "NAME@A")->required();
  diff->add_option("b", *db, "NAME@B")->required();
  diff->add_flag("--json", *diff_json, "print JSON");
  diff->callback([&g, da, db, diff_json] { g.exit_code = RunDiff(g, *da, *db, *diff_json); });

  auto* val = data->add_subcommand(
      "validate",
      "Run an expectation suite (YAML; a default suite otherwise) on a version; stores the "
      "report; exit code 4 when an error-level expectation fails");
  auto va = std::make_shared<ValidateArgs>();
  val->add_option("ref", va->ref, "NAME or NAME@VERSION")->required();
  val->add_option("--suite", va->suite, "expectation suite YAML file")->check(CLI::ExistingFile);
  val->add_option("--threads", va->threads, "decoding threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  val->add_option("--max-findings", va->max_findings, "offending files listed per expectation")
      ->capture_default_str();
  val->add_flag("--json", va->json, "print the report as JSON (every finding)");
  val->callback([&g, va] { g.exit_code = RunValidate(g, *va); });

  auto* rep = data->add_subcommand("report", "Show the latest stored validation report");
  auto rep_ref = std::make_shared<std::string>();
  auto rep_json = std::make_shared<bool>(false);
  auto rep_max = std::make_shared<size_t>(5);
  rep->add_option("ref", *rep_ref, "NAME or NAME@VERSION")->required();
  rep->add_option("--max-findings", *rep_max, "offending files listed per expectation");
  rep->add_flag("--json", *rep_json, "print JSON");
  rep->callback([&g, rep_ref, rep_json, rep_max] {
    g.exit_code = RunReport(g, *rep_ref, *rep_json, *rep_max);
  });

  auto* exp = data->add_subcommand(
      "export", "Write a version as a YOLO or COCO folder (re-importing it gives the same id)");
  auto er = std::make_shared<std::string>(), eo = std::make_shared<std::string>();
  auto ef = std::make_shared<std::string>("yolo");
  exp->add_option("ref", *er, "NAME or NAME@VERSION")->required();
  exp->add_option("out", *eo, "output folder (absent or empty)")->required();
  exp->add_option("--format", *ef, "yolo | coco")
      ->check(CLI::IsMember({"yolo", "coco"}))
      ->capture_default_str();
  exp->callback([&g, er, eo, ef] { g.exit_code = RunExport(g, *er, *eo, *ef); });

  auto* der = data->add_subcommand(
      "derive",
      "Make a new version from NAME@V with operations applied in the order given, recording the "
      "parent and the operations (see docs/validation.md): --fix-leakage[=drop], --resplit "
      "train=0.8,val=0.1,test=0.1, --map-classes \"a=x,b=x\", --drop-classes \"c1,c2\", "
      "--drop-finding CHECK, --sample N|FRACTION, --merge OTHER@V");
  auto dv = std::make_shared<DeriveArgs>();
  der->add_option("ref", dv->ref, "NAME or NAME@VERSION to derive from")->required();
  der->add_option("--name", dv->name, "dataset of the new version (default: the source's)");
  der->add_option("--seed", dv->seed, "seed of --resplit and --sample")->capture_default_str();
  der->add_option("--threads", dv->threads, "decoding threads for images not yet profiled")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  der->add_flag("--json", dv->json, "print the result as JSON");
  der->allow_extras();
  der->callback([&g, dv, der] { g.exit_code = RunDerive(g, *dv, der->remaining()); });
}

}  // namespace detops::cli
