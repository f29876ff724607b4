// `strata profile` (apps/strata/profile.h) on the small model: its phases add up to the wall time of
// the iterations it measured, its memory rows add up exactly to the allocator's peak, its JSON has
// the fields scripts read, and options it cannot use are refused naming them.
#include <catch2/catch.hpp>

#include <numeric>
#include <set>

#include "apps/strata/profile.h"
#include "engine/allocator.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::app;

namespace {

ProfileSettings small_setting() {
  ProfileSettings s;
  s.method = "MiB";
  s.backbone = "small";
  s.batch = 2;
  s.crop = 32;
  s.iterations = 2;
  s.warmup = 1;
  return s;
}

// One run shared by the test cases (each costs a model build and three iterations).
const MethodProfile& mib_run() {
  static const MethodProfile run = profile_method(small_setting(), "MiB");
  return run;
}

double phase_seconds(const MethodProfile& run, const std::string& name) {
  for (const PhaseProfile& p : run.phases) {
    if (p.name == name) return p.seconds;
  }
  FAIL("no phase " << name);
  return 0;
}

}  // namespace

TEST_CASE("strata profile: the phases cover the wall time and the memory rows sum to the allocator's peak", "[cpu]") {
  const MethodProfile& run = mib_run();
  // Read before anything else allocates: the peak of the profiled iterations.
  const int64_t allocator_peak = memory_stats(Device::cpu()).peak_allocated_bytes;

  REQUIRE(run.wall_seconds > 0);
  double covered = 0;
  for (const PhaseProfile& p : run.phases) {
    if (p.name != "outside the phases") covered += p.seconds;
  }
  CHECK(std::abs(run.wall_seconds - covered) <= test::kProfileUncoveredWallShare * run.wall_seconds);
  for (const char* phase : {"teacher forward", "student forward", "losses", "backward", "optimizer step"}) {
    INFO(phase);
    CHECK(phase_seconds(run, phase) > 0);
  }

  const std::vector<std::string>& names = profile_memory_rows();
  REQUIRE(run.memory.size() == names.size());
  int64_t sum = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(run.memory[i].name == names[i]);
    CHECK(run.memory[i].bytes >= 0);
    sum += run.memory[i].bytes;
  }
  CHECK(sum == run.peak_bytes);
  CHECK(sum == allocator_peak);
  // MiB keeps a teacher; the step's weights, gradients and momentum are all live at some point.
  for (size_t row : {0, 1, 3}) {
    INFO(names[row]);
    CHECK(run.memory[row].bytes > 0);
  }

  // The heavy ops report their work.
  bool conv_counted = false;
  for (const OpProfile& op : run.ops) {
    conv_counted = conv_counted || (op.name == "conv2d" && op.flops > 0 && op.bytes > 0);
  }
  CHECK(conv_counted);
}

TEST_CASE("strata profile: the JSON report parses and has the fields scripts read", "[cpu]") {
  const MethodProfile& run = mib_run();
  Roofline roofline;
  roofline.flops_per_second = 1e9;
  roofline.bytes_per_second = 1e9;
  const json::Value report = json::parse(json::dump(profile_json(small_setting(), roofline, {run, run})));
  CHECK(report.at("setting").at("backbone").as_string() == "small");
  CHECK(report.at("h100").at("bytes_per_second").as_double() == kH100Bandwidth);
  CHECK(report.at("roofline").at("flops_per_second").as_double() == 1e9);
  const json::Array& runs = report.at("runs").as_array();
  REQUIRE(runs.size() == 2);
  const json::Value& first = runs[0];
  CHECK(first.at("wall_seconds").as_double() == run.wall_seconds);
  std::set<std::string> phases;
  for (const json::Value& p : first.at("phases").as_array()) {
    phases.insert(p.at("name").as_string());
    CHECK(p.at("seconds").is_number());
    CHECK(p.at("h100_bf16_seconds").is_number());
    CHECK(p.at("ops").is_array());
  }
  CHECK(phases.count("losses") == 1);
  CHECK(phases.count("data") == 1);
  for (const json::Value& op : first.at("ops").as_array()) {
    for (const char* field : {"name", "calls", "seconds", "flops", "bytes", "flops_per_second", "bytes_per_second",
                              "roofline_seconds", "h100_f32_seconds", "h100_bf16_seconds"}) {
      INFO(field);
      CHECK(op.find(field) != nullptr);
    }
  }
  int64_t sum = 0;
  for (const json::Value& row : first.at("memory").at("rows").as_array()) sum += row.at("bytes").as_int();
  CHECK(sum == first.at("memory").at("peak_bytes").as_int());
  CHECK(report.at("difference").at("peak_bytes").as_int() == 0);
  CHECK(report.at("difference").at("memory").as_array().size() == profile_memory_rows().size());
  CHECK_THAT(format_profile(small_setting(), roofline, {run, run}),
             Catch::Contains("what MiB") && Catch::Contains("peak memory") && Catch::Contains("H100"));
}

TEST_CASE("strata profile: options it cannot use are refused naming them", "[cpu]") {
  auto refused = [](const Args& args, const std::string& message) {
    ProfileSettings s;
    INFO(message);
    CHECK_THROWS_WITH(parse_profile_args(args, s), Catch::Contains(message));
  };
  refused({"--bogus"}, "unknown option '--bogus'");
  refused({"--iterations", "0"}, "--iterations must be >= 1, got 0");
  refused({"--crop-size", "big"}, "--crop-size expects an integer, got 'big'");
  refused({"--crop-size", "8"}, "--crop-size must be >= 16");
  refused({"--batch-size"}, "--batch-size needs a value");
  refused({"--backbone", "vgg"}, "--backbone 'vgg'");
  refused({"--arch", "fcn"}, "--arch 'fcn': expected deeplabv3, pspnet, deeplabv3plus or bisenet");
  refused({"--method", "nope"}, "nope");
  refused({"--compare", "nope"}, "nope");
  refused({"--task", "15-5", "--step", "7"}, "15-5");
  refused({"--json", "/nonexistent-folder/report.json"}, "does not exist");
  ProfileSettings s;
  CHECK(parse_profile_args({"--method", "ft", "--compare", "MiB", "--backbone", "small"}, s));
  CHECK(s.compare == "MiB");
}

TEST_CASE("strata profile: train's method flags change --method and not --compare, checked as train checks them",
          "[cpu]") {
  ProfileSettings s = small_setting();
  REQUIRE(parse_profile_args({"--method", "LwF", "--compare", "LwF", "--kd-temperature", "4", "--kd-loss", "l2",
                              "--kd-exclude-background", "--loss-kd", "10"},
                             s));
  CHECK(*s.method_overrides.kd_temperature == 4);
  CHECK(*s.method_overrides.loss_kd == 10);
  CHECK(profile_method(s, "LwF", true).method == "LwF+ (kd x10 l2 T4 no background)");
  CHECK(profile_method(s, "LwF", false).method == "LwF (kd x100)");
  ProfileSettings bad = small_setting();
  CHECK_THROWS_WITH(parse_profile_args({"--method", "FT", "--kd-temperature", "2"}, bad),
                    Catch::Contains("--kd-temperature changes the output distillation"));
  CHECK_THROWS_WITH(parse_profile_args({"--kd-loss", "mse"}, bad), Catch::Contains("--kd-loss expects ce, kl or l2"));
  CHECK_THROWS_WITH(parse_profile_args({"--data-root", "x"}, bad), Catch::Contains("unknown option '--data-root'"));
}

TEST_CASE("strata profile: PLOP computes its pseudo-label thresholds in the set-up and profiles its Local POD",
          "[cpu]") {
  ProfileSettings s = small_setting();
  s.crop = 64;  // Local POD's scale 4 needs the head's 4x4 map at output stride 16
  const MethodProfile run = profile_method(s, "PLOP");
  CHECK(run.method.rfind("PLOP (", 0) == 0);
  bool pod = false;
  for (const OpProfile& op : run.ops) pod = pod || op.name.find("pod") != std::string::npos;
  CHECK(pod);
  CHECK(phase_seconds(run, "losses") > 0);
}

TEST_CASE("strata profile --arch profiles that architecture with its aux term (PSPNet, BiSeNet)", "[cpu]") {
  for (const char* arch : {"pspnet", "bisenet"}) {
    INFO(arch);
    ProfileSettings s = small_setting();
    s.arch = arch;
    s.crop = 64;
    s.iterations = 1;
    const MethodProfile run = profile_method(s, "MiB");
    CHECK_THAT(run.model, Catch::Contains(std::string(arch) == "pspnet" ? "PSPNet" : "BiSeNet"));
    CHECK(run.loss_terms.back() == "aux");
    CHECK(phase_seconds(run, "student forward") > 0);
  }
}
