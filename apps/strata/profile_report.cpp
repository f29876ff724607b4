// `strata profile`'s tables and JSON (apps/strata/profile.h).
#include <algorithm>
#include <cstdio>
#include <string>

#include "apps/strata/profile.h"
#include "engine/error.h"

namespace strata::app {

namespace {

std::string line(const char* format, auto... values) {
  char buffer[512];
  std::snprintf(buffer, sizeof buffer, format, values...);
  return buffer;
}

double ms(double seconds) { return seconds * 1e3; }
double mb(double bytes) { return bytes / 1e6; }

double share(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

std::string phases_table(const MethodProfile& run) {
  std::string out = line("%-36s %10s %7s %10s %10s %12s %12s\n", "phase (per iteration)", "ms", "%", "GFLOP", "MB",
                         "H100 f32 ms", "H100 bf16 ms");
  auto row = [&](const std::string& name, double seconds, double flops, double bytes) {
    out += line("%-36s %10.2f %6.1f%% %10.3f %10.1f %12.4f %12.4f\n", name.c_str(), ms(seconds),
                share(seconds, run.wall_seconds), flops * 1e-9, mb(bytes),
                ms(h100_seconds(flops, bytes, kH100PeakF32)), ms(h100_seconds(flops, bytes, kH100PeakBf16Dense)));
  };
  double flops = 0, bytes = 0;
  for (const PhaseProfile& p : run.phases) {
    row(p.name, p.seconds, p.flops, p.bytes);
    flops += p.flops;
    bytes += p.bytes;
    // The losses phase op by op: where each loss term's work goes.
    if (p.name != "losses") continue;
    for (const profiler::Entry& e : p.ops) {
      out += line("    %-32s %10.2f %6.1f%% %10.3f %10.1f\n", e.name.c_str(), ms(e.self_seconds),
                  share(e.self_seconds, run.wall_seconds), e.flops * 1e-9, mb(e.bytes));
    }
  }
  row("total (wall time)", run.wall_seconds, flops, bytes);
  return out;
}

std::string ops_table(const MethodProfile& run, const Roofline& roofline, int top) {
  std::string out = line("%-30s %7s %9s %6s %9s %9s %9s %8s %6s %10s %10s\n", "op (self time per iteration)", "calls",
                         "ms", "%", "GFLOP", "MB", "GFLOP/s", "GB/s", "%roof", "H100 f32", "H100 bf16");
  double total = 0;
  for (const OpProfile& op : run.ops) total += op.seconds;
  int shown = 0;
  for (const OpProfile& op : run.ops) {
    if (shown++ >= top) break;
    const double roof = roofline.seconds(op.flops, op.bytes);
    out += line("%-30s %7.1f %9.2f %5.1f%% %9.3f %9.1f %9.1f %8.2f %5.0f%% %10.4f %10.4f\n", op.name.c_str(),
                op.calls, ms(op.seconds), share(op.seconds, total), op.flops * 1e-9, mb(op.bytes),
                op.seconds > 0 ? op.flops / op.seconds * 1e-9 : 0.0,
                op.seconds > 0 ? op.bytes / op.seconds * 1e-9 : 0.0,
                share(roof, op.seconds), ms(h100_seconds(op.flops, op.bytes, kH100PeakF32)),
                ms(h100_seconds(op.flops, op.bytes, kH100PeakBf16Dense)));
  }
  if (static_cast<int>(run.ops.size()) > top) {
    out += line("(%d more rows in --json)\n", static_cast<int>(run.ops.size()) - top);
  }
  return out;
}

std::string memory_table(const MethodProfile& run) {
  std::string out = line("%-40s %12s %7s %8s\n", "peak memory", "MB", "%", "blocks");
  int64_t sum = 0;
  for (const auto& r : run.memory) {
    out += line("%-40s %12.2f %6.1f%% %8lld\n", r.name.c_str(), mb(static_cast<double>(r.bytes)),
                share(static_cast<double>(r.bytes), static_cast<double>(run.peak_bytes)),
                static_cast<long long>(r.allocations));
    sum += r.bytes;
  }
  out += line("%-40s %12.2f (the allocator's peak: %.2f MB)\n", "total", mb(static_cast<double>(sum)),
              mb(static_cast<double>(run.peak_bytes)));
  return out;
}

std::string difference_table(const MethodProfile& a, const MethodProfile& b) {
  std::string out = line("what %s costs on top of %s, per iteration\n", b.method.c_str(), a.method.c_str());
  out += line("%-40s %12s %12s %12s %8s\n", "phase", "first ms", "second ms", "difference", "ratio");
  for (size_t i = 0; i < a.phases.size() && i < b.phases.size(); ++i) {
    const double x = a.phases[i].seconds, y = b.phases[i].seconds;
    out += line("%-40s %12.2f %12.2f %+12.2f %8s\n", a.phases[i].name.c_str(), ms(x), ms(y), ms(y - x),
                x > 0 ? line("%.2f", y / x).c_str() : "-");
  }
  out += line("%-40s %12.2f %12.2f %+12.2f %8.2f\n", "total (wall time)", ms(a.wall_seconds), ms(b.wall_seconds),
              ms(b.wall_seconds - a.wall_seconds), a.wall_seconds > 0 ? b.wall_seconds / a.wall_seconds : 0.0);
  out += line("%-40s %12s %12s %12s\n", "peak memory row", "first MB", "second MB", "difference");
  for (size_t i = 0; i < a.memory.size() && i < b.memory.size(); ++i) {
    const double x = static_cast<double>(a.memory[i].bytes), y = static_cast<double>(b.memory[i].bytes);
    out += line("%-40s %12.2f %12.2f %+12.2f\n", a.memory[i].name.c_str(), mb(x), mb(y), mb(y - x));
  }
  const double x = static_cast<double>(a.peak_bytes), y = static_cast<double>(b.peak_bytes);
  out += line("%-40s %12.2f %12.2f %+12.2f  ratio %.2f\n", "peak", mb(x), mb(y), mb(y - x), x > 0 ? y / x : 0.0);
  return out;
}

json::Value entry_json(const profiler::Entry& e) {
  return json::Object{{"name", e.name},
                      {"calls", e.calls},
                      {"self_seconds", e.self_seconds},
                      {"total_seconds", e.total_seconds},
                      {"flops", e.flops},
                      {"bytes", e.bytes}};
}

json::Value run_json(const MethodProfile& run, const Roofline& roofline) {
  json::Array phases, ops, memory;
  for (const PhaseProfile& p : run.phases) {
    json::Array inside;
    for (const profiler::Entry& e : p.ops) inside.push_back(entry_json(e));
    phases.push_back(json::Object{{"name", p.name},
                                  {"seconds", p.seconds},
                                  {"share", run.wall_seconds > 0 ? p.seconds / run.wall_seconds : 0.0},
                                  {"flops", p.flops},
                                  {"bytes", p.bytes},
                                  {"h100_f32_seconds", h100_seconds(p.flops, p.bytes, kH100PeakF32)},
                                  {"h100_bf16_seconds", h100_seconds(p.flops, p.bytes, kH100PeakBf16Dense)},
                                  {"ops", inside}});
  }
  for (const OpProfile& op : run.ops) {
    const double roof = roofline.seconds(op.flops, op.bytes);
    ops.push_back(json::Object{{"name", op.name},
                               {"calls", op.calls},
                               {"seconds", op.seconds},
                               {"flops", op.flops},
                               {"bytes", op.bytes},
                               {"flops_per_second", op.seconds > 0 ? op.flops / op.seconds : 0.0},
                               {"bytes_per_second", op.seconds > 0 ? op.bytes / op.seconds : 0.0},
                               {"roofline_seconds", roof},
                               {"h100_f32_seconds", h100_seconds(op.flops, op.bytes, kH100PeakF32)},
                               {"h100_bf16_seconds", h100_seconds(op.flops, op.bytes, kH100PeakBf16Dense)}});
  }
  for (const auto& r : run.memory) {
    memory.push_back(json::Object{{"name", r.name}, {"bytes", r.bytes}, {"allocations", r.allocations}});
  }
  json::Array terms;
  for (const std::string& t : run.loss_terms) terms.emplace_back(t);
  return json::Object{{"method", run.method},
                      {"model", run.model},
                      {"iterations", run.iterations},
                      {"wall_seconds", run.wall_seconds},
                      {"loss", run.last_loss},
                      {"loss_terms", terms},
                      {"phases", phases},
                      {"ops", ops},
                      {"memory", json::Object{{"peak_bytes", run.peak_bytes}, {"rows", memory}}}};
}

}  // namespace

std::string format_profile(const ProfileSettings& s, const Roofline& roofline, const std::vector<MethodProfile>& runs) {
  std::string out;
  out += line("strata profile: VOC %s step %d, batch %lld, crop %lldx%lld, %s, %d threads; %d warm-up + %d profiled "
              "iterations (figures are their mean)\n",
              s.task.c_str(), s.step, static_cast<long long>(s.batch), static_cast<long long>(s.crop),
              static_cast<long long>(s.crop), s.device.c_str(), s.threads, s.warmup, s.iterations);
  if (roofline.flops_per_second > 0) {
    out += line("roofline of %s (%s): %.1f GFLOP/s, %.2f GB/s\n", s.device.c_str(), roofline.how.c_str(),
                roofline.flops_per_second * 1e-9, roofline.bytes_per_second * 1e-9);
  }
  out += line("H100 SXM projection per op: max(FLOPs / peak, bytes / %.2f TB/s), f32 peak %.1f TFLOP/s, bf16 dense "
              "%.1f TFLOP/s (shared/reference/performance-anchors.md 2.1); the bytes are this run's f32 bytes\n",
              kH100Bandwidth * 1e-12, kH100PeakF32 * 1e-12, kH100PeakBf16Dense * 1e-12);
  for (const MethodProfile& run : runs) {
    out += line("\n== %s | %s\n\n", run.method.c_str(), run.model.c_str());
    out += phases_table(run);
    out += '\n';
    out += ops_table(run, roofline, s.top);
    out += '\n';
    out += memory_table(run);
  }
  if (runs.size() == 2) {
    out += '\n';
    out += difference_table(runs[0], runs[1]);
  }
  return out;
}

json::Value profile_json(const ProfileSettings& s, const Roofline& roofline, const std::vector<MethodProfile>& runs) {
  json::Array methods;
  for (const MethodProfile& run : runs) methods.push_back(run_json(run, roofline));
  json::Object out{{"setting", json::Object{{"task", s.task},
                                            {"step", s.step},
                                            {"arch", s.arch},
                                            {"backbone", s.backbone},
                                            {"batch", s.batch},
                                            {"crop", s.crop},
                                            {"device", s.device},
                                            {"threads", s.threads},
                                            {"warmup", s.warmup},
                                            {"iterations", s.iterations}}},
                   {"roofline", json::Object{{"flops_per_second", roofline.flops_per_second},
                                             {"bytes_per_second", roofline.bytes_per_second},
                                             {"how", roofline.how}}},
                   {"h100", json::Object{{"bytes_per_second", kH100Bandwidth},
                                         {"f32_flops_per_second", kH100PeakF32},
                                         {"bf16_dense_flops_per_second", kH100PeakBf16Dense}}},
                   {"runs", methods}};
  if (runs.size() == 2) {
    json::Array phases, memory;
    for (size_t i = 0; i < runs[0].phases.size() && i < runs[1].phases.size(); ++i) {
      phases.push_back(json::Object{{"name", runs[0].phases[i].name},
                                    {"seconds", runs[1].phases[i].seconds - runs[0].phases[i].seconds}});
    }
    for (size_t i = 0; i < runs[0].memory.size() && i < runs[1].memory.size(); ++i) {
      memory.push_back(
          json::Object{{"name", runs[0].memory[i].name}, {"bytes", runs[1].memory[i].bytes - runs[0].memory[i].bytes}});
    }
    out.emplace_back("difference", json::Object{{"wall_seconds", runs[1].wall_seconds - runs[0].wall_seconds},
                                                {"peak_bytes", runs[1].peak_bytes - runs[0].peak_bytes},
                                                {"phases", phases},
                                                {"memory", memory}});
  }
  return out;
}

}  // namespace strata::app
