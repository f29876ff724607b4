// render_report_html (run_report.h): the page, its tables and its SVG charts, written by hand so
// the page needs nothing but a browser (no script, no font, no network).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "engine/error.h"
#include "incremental/run_report.h"

namespace strata::incremental {

namespace {

// Old, new and all keep these colours on every chart; runs take the palette in order.
constexpr const char* kOldColour = "#1f77b4";
constexpr const char* kNewColour = "#ff7f0e";
constexpr const char* kAllColour = "#2ca02c";
constexpr const char* kRunColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string fixed(double value, int decimals) {
  char out[48];
  std::snprintf(out, sizeof(out), "%.*f", decimals, value);
  return out;
}

// A fraction as the papers print it: percent with one decimal; "-" without ground truth.
std::string percent(double fraction) { return std::isfinite(fraction) ? fixed(100 * fraction, 1) : "-"; }

std::string general(double value) {
  char out[48];
  std::snprintf(out, sizeof(out), "%.6g", value);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Line charts

struct Series {
  std::string name;
  std::string colour;
  bool dashed = false;
  std::vector<std::pair<double, double>> points;  // (x, y); a NaN y breaks the line
};

struct LineChart {
  std::string title, x_label, y_label;
  bool integer_x = false;  // steps: a tick at every integer
  double y_max = kAuto;    // kAuto: from the data
  std::vector<Series> series;
  static constexpr double kAuto = -1;
};

// About `count` round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int count) {
  const double raw = (hi - lo) / std::max(count, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> out;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);  // no "-0" from rounding
  }
  return out;
}

std::string render_line_chart(const LineChart& chart) {
  // Two charts fit side by side in a 1200-pixel window.
  constexpr double width = 560, height = 300, left = 56, right = 150, top = 30, bottom = 46;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_lo = INFINITY, x_hi = -INFINITY, y_hi = 0;
  for (const Series& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      if (std::isfinite(y)) y_hi = std::max(y_hi, y);
    }
  }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  if (x_hi - x_lo < 1e-12) x_lo -= 0.5, x_hi += 0.5;
  y_hi = chart.y_max > 0 ? chart.y_max : y_hi > 0 ? y_hi * 1.05 : 1;
  const auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - std::clamp(y / y_hi, 0.0, 1.0) * plot_h; };

  std::string svg = cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
                        "\" viewBox=\"0 0 ", width, " ", height, "\" role=\"img\"><title>", html_escape(chart.title),
                        "</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>");
  svg += cat("<text x=\"", left, "\" y=\"18\" class=\"chart-title\">", html_escape(chart.title), "</text>");
  for (double t : ticks(0, y_hi, 5)) {
    svg += cat("<line x1=\"", left, "\" x2=\"", left + plot_w, "\" y1=\"", fixed(py(t), 1), "\" y2=\"", fixed(py(t), 1),
               "\" class=\"grid\"/><text x=\"", left - 6, "\" y=\"", fixed(py(t) + 4, 1), "\" text-anchor=\"end\">",
               general(t), "</text>");
  }
  std::vector<double> x_ticks;
  if (chart.integer_x) {
    for (double x = std::ceil(x_lo); x <= x_hi; ++x) x_ticks.push_back(x);
  } else {
    x_ticks = ticks(x_lo, x_hi, 6);
  }
  for (double t : x_ticks) {
    svg += cat("<text x=\"", fixed(px(t), 1), "\" y=\"", top + plot_h + 16, "\" text-anchor=\"middle\">", general(t),
               "</text>");
  }
  svg += cat("<rect x=\"", left, "\" y=\"", top, "\" width=\"", plot_w, "\" height=\"", plot_h,
             "\" class=\"frame\"/><text x=\"", left + plot_w / 2, "\" y=\"", height - 8, "\" text-anchor=\"middle\">",
             html_escape(chart.x_label), "</text><text transform=\"translate(14,", top + plot_h / 2,
             ") rotate(-90)\" text-anchor=\"middle\">", html_escape(chart.y_label), "</text>");
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    std::string path;
    bool pen_down = false;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) {
        pen_down = false;
        continue;
      }
      path += cat(pen_down ? " L" : " M", fixed(px(x), 1), " ", fixed(py(y), 1));
      pen_down = true;
    }
    const std::string dash = s.dashed ? " stroke-dasharray=\"6 4\"" : "";
    if (!path.empty()) {
      svg += cat("<path d=\"", path, "\" fill=\"none\" stroke=\"", s.colour, "\" stroke-width=\"2\"", dash, "/>");
    }
    // Markers: a series of one step is a point, and steps are what the reader counts.
    if (chart.integer_x) {
      for (const auto& [x, y] : s.points) {
        if (std::isfinite(y)) {
          svg += cat("<circle cx=\"", fixed(px(x), 1), "\" cy=\"", fixed(py(y), 1), "\" r=\"3.5\" fill=\"", s.colour,
                     "\"/>");
        }
      }
    }
    const double ly = top + 8 + 18 * static_cast<double>(k);
    svg += cat("<line x1=\"", left + plot_w + 12, "\" x2=\"", left + plot_w + 36, "\" y1=\"", ly, "\" y2=\"", ly,
               "\" stroke=\"", s.colour, "\" stroke-width=\"2\"", dash, "/><text x=\"", left + plot_w + 42, "\" y=\"",
               ly + 4, "\">", html_escape(s.name), "</text>");
  }
  return svg + "</svg>";
}

// ---------------------------------------------------------------------------------------------
// Per-class heat map

// IoU 0 -> red, 0.5 -> yellow, 1 -> green (ColorBrewer RdYlGn's ends and middle).
std::string iou_colour(double iou) {
  const double t = std::clamp(iou, 0.0, 1.0);
  const int low[3] = {215, 48, 39}, middle[3] = {254, 224, 139}, high[3] = {26, 152, 80};
  const int* a = t < 0.5 ? low : middle;
  const int* b = t < 0.5 ? middle : high;
  const double u = t < 0.5 ? t / 0.5 : (t - 0.5) / 0.5;
  char out[8];
  std::snprintf(out, sizeof(out), "#%02x%02x%02x", static_cast<int>(std::lround(a[0] + u * (b[0] - a[0]))),
                static_cast<int>(std::lround(a[1] + u * (b[1] - a[1]))),
                static_cast<int>(std::lround(a[2] + u * (b[2] - a[2]))));
  return out;
}

// Rows: channels (named), columns: the steps' results; a cell's IoU in percent on its colour, "X"
// for a channel without ground truth at that step, empty before its step.
std::string render_heat_map(const RunLog& run) {
  size_t channels = 0;
  for (const RunScores& s : run.results) channels = std::max(channels, s.iou.size());
  const std::vector<std::string> names = run.channel_names(channels);
  constexpr double label_w = 170, cell_w = 56, cell_h = 18, top = 48;
  // At least as wide as the colour legend below the cells.
  const double width = std::max(label_w + cell_w * static_cast<double>(run.results.size()) + 20, 580.0);
  const double height = top + cell_h * static_cast<double>(channels) + 40;
  std::string svg = cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
                        "\" viewBox=\"0 0 ", width, " ", height, "\" role=\"img\"><title>per-class IoU of ",
                        html_escape(run.name), "</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>",
                        "<text x=\"0\" y=\"18\" class=\"chart-title\">per-class IoU (%) after each step</text>");
  for (size_t j = 0; j < run.results.size(); ++j) {
    svg += cat("<text x=\"", label_w + cell_w * (static_cast<double>(j) + 0.5), "\" y=\"", top - 8,
               "\" text-anchor=\"middle\">step ", run.results[j].step, "</text>");
  }
  for (size_t c = 0; c < channels; ++c) {
    const double y = top + cell_h * static_cast<double>(c);
    svg += cat("<text x=\"", label_w - 6, "\" y=\"", y + 13, "\" text-anchor=\"end\">", c, " ", html_escape(names[c]),
               "</text>");
    for (size_t j = 0; j < run.results.size(); ++j) {
      const std::vector<double>& iou = run.results[j].iou;
      const double x = label_w + cell_w * static_cast<double>(j);
      if (c >= iou.size()) continue;
      const bool seen = std::isfinite(iou[c]);
      svg += cat("<rect x=\"", x, "\" y=\"", y, "\" width=\"", cell_w - 1, "\" height=\"", cell_h - 1, "\" fill=\"",
                 seen ? iou_colour(iou[c]) : "#d9d9d9", "\"/><text x=\"", x + cell_w / 2, "\" y=\"", y + 13,
                 "\" text-anchor=\"middle\">", seen ? fixed(100 * iou[c], 1) : "X", "</text>");
    }
  }
  const double legend_y = top + cell_h * static_cast<double>(channels) + 14;
  svg += cat("<text x=\"0\" y=\"", legend_y + 12, "\">IoU</text>");
  for (int k = 0; k <= 4; ++k) {
    const double x = 40 + 50 * k;
    svg += cat("<rect x=\"", x, "\" y=\"", legend_y, "\" width=\"48\" height=\"16\" fill=\"", iou_colour(k / 4.0),
               "\"/><text x=\"", x + 24, "\" y=\"", legend_y + 12, "\" text-anchor=\"middle\">", 25 * k, "</text>");
  }
  svg += cat("<rect x=\"300\" y=\"", legend_y, "\" width=\"48\" height=\"16\" fill=\"#d9d9d9\"/><text x=\"354\" y=\"",
             legend_y + 12, "\">X: no ground truth in the test images</text>");
  return svg + "</svg>";
}

// ---------------------------------------------------------------------------------------------
// Tables and sections

std::string means_cells(const RunMeans& m) {
  return cat("<td>", percent(m.old_with_background), "</td><td>", percent(m.new_with_background), "</td><td>",
             percent(m.all_with_background), "</td><td>", percent(m.old_without_background), "</td><td>",
             percent(m.new_without_background), "</td><td>", percent(m.all_without_background), "</td>");
}

constexpr const char* kMeansHeader =
    "<tr><th colspan=\"3\">background included (PLOP)</th><th colspan=\"3\">background excluded (MiB)</th></tr>"
    "<tr><th>old</th><th>new</th><th>all</th><th>old</th><th>new</th><th>all</th></tr>";

std::string setting_table(const RunLog& run) {
  std::string html = "<table class=\"setting\">";
  auto row = [&](const char* key, const std::string& value) {
    if (!value.empty()) html += cat("<tr><th>", key, "</th><td>", html_escape(value), "</td></tr>");
  };
  row("log", run.path);
  row("dataset", run.setting("dataset").empty() ? run.dataset : run.setting("dataset"));
  row("task", run.setting("task_description").empty() ? run.task : run.setting("task_description"));
  row("protocol", run.setting("protocol"));
  row("convention", run.setting("convention"));
  row("method", run.setting("method"));
  row("model", run.setting("model"));
  row("device", cat(run.setting("device"), run.setting("precision").empty() ? "" : ", ", run.setting("precision")));
  row("seed", run.setting("seed"));
  if (run.configuration.empty()) row("note", "the log holds no run configuration record");
  html += "</table>";
  if (run.steps.empty()) return html;
  html +=
      "<table class=\"recipe\"><tr><th>step</th><th>classes</th><th>method</th><th>epochs</th><th>batch</th>"
      "<th>crop</th><th>lr</th><th>training images</th><th>iterations</th></tr>";
  for (const RunStep& s : run.steps) {
    html += cat("<tr><td>", s.step, "</td><td>", html_escape(s.classes), "</td><td>", html_escape(s.method),
                "</td><td>", s.epochs, "</td><td>", s.batch_size, "</td><td>", s.crop_size, "</td><td>", general(s.lr),
                "</td><td>", s.training_images, "</td><td>", s.max_iterations, "</td></tr>");
  }
  return html + "</table>";
}

std::string scores_table(const RunLog& run) {
  std::string html = cat("<table class=\"scores\"><tr><th rowspan=\"2\">step</th><th rowspan=\"2\">images</th>",
                         "<th rowspan=\"2\">mIoU</th>", std::string(kMeansHeader).substr(4));
  for (const RunScores& s : run.results) {
    html +=
        cat("<tr><td>", s.step, s.from.empty() ? "" : cat(" <span class=\"from\">(", html_escape(s.from), ")</span>"),
            "</td><td>", s.images, "</td><td>", percent(s.miou), "</td>", means_cells(s.means), "</tr>");
  }
  return html + "</table>";
}

// old/new/all over steps; solid with background, dashed without.
std::string miou_chart(const RunLog& run) {
  struct Group {
    const char* name;
    const char* colour;
    double RunMeans::*with;
    double RunMeans::*without;
  };
  const Group groups[] = {{"old", kOldColour, &RunMeans::old_with_background, &RunMeans::old_without_background},
                          {"new", kNewColour, &RunMeans::new_with_background, &RunMeans::new_without_background},
                          {"all", kAllColour, &RunMeans::all_with_background, &RunMeans::all_without_background}};
  LineChart chart{"mIoU (%) after each step", "step", "mIoU (%)", true, 100, {}};
  for (bool excluded : {false, true}) {
    for (const Group& g : groups) {
      Series s{cat(g.name, excluded ? " (no bg)" : ""), g.colour, excluded, {}};
      for (const RunScores& r : run.results)
        s.points.emplace_back(r.step, 100 * (r.means.*(excluded ? g.without : g.with)));
      chart.series.push_back(std::move(s));
    }
  }
  return render_line_chart(chart);
}

// One chart per step: the total and each weighted term against the iteration.
std::string loss_charts(const RunLog& run) {
  std::map<int, std::vector<const RunLosses*>> by_step;
  for (const RunLosses& l : run.losses) by_step[l.step].push_back(&l);
  std::string html;
  for (const auto& [step, records] : by_step) {
    LineChart chart{cat("losses of step ", step), "iteration", "loss", false, LineChart::kAuto, {}};
    Series total{"total", "#000000", false, {}};
    std::map<std::string, Series> terms;
    std::vector<std::string> order;
    for (const RunLosses* l : records) {
      total.points.emplace_back(static_cast<double>(l->iteration), l->loss);
      for (const auto& [term, value] : l->terms) {
        if (terms.count(term) == 0) order.push_back(term);
        terms[term].points.emplace_back(static_cast<double>(l->iteration), value);
      }
    }
    chart.series.push_back(std::move(total));
    // A single term is the total itself.
    if (order.size() > 1) {
      for (size_t k = 0; k < order.size(); ++k) {
        Series& s = terms[order[k]];
        s.name = order[k];
        s.colour = kRunColours[(k + 1) % std::size(kRunColours)];
        s.dashed = true;
        chart.series.push_back(std::move(s));
      }
    }
    html += render_line_chart(chart);
  }
  return html;
}

std::string prediction_strips(const RunLog& run) {
  if (run.predictions.empty()) return "";
  std::string html =
      cat("<h3>predictions</h3><p class=\"note\">", run.predictions.size(), " of the ", run.prediction_files,
          " strips written by --save-predictions (image | ground truth | prediction, and at steps >= 1 "
          "the previous step's model's prediction)</p>");
  for (const PredictionStrip& p : run.predictions) {
    html += cat("<figure><img alt=\"prediction strip\" src=\"data:image/png;base64,", base64(p.png),
                "\"/><figcaption>step ", p.step, ": ", html_escape(p.path), "</figcaption></figure>");
  }
  return html;
}

std::string run_section(const RunLog& run, size_t index) {
  std::string html = cat("<section id=\"run-", index, "\"><h2>", html_escape(run.name), "</h2>", setting_table(run));
  if (run.results.empty()) {
    html += "<p class=\"note\">no step has finished its evaluation in this log yet</p>";
  } else {
    html += cat("<h3>mean IoU (%) on the test images</h3>", scores_table(run),
                "<p class=\"note\">old = the classes of step 0, new = the classes of steps 1..t</p>",
                "<div class=\"charts\">", miou_chart(run), render_heat_map(run), "</div>");
  }
  if (!run.losses.empty()) html += cat("<h3>training losses</h3><div class=\"charts\">", loss_charts(run), "</div>");
  return html + prediction_strips(run) + "</section>";
}

// The papers' layout: a row per run, old/new/all at its last step, and the curves on one chart.
std::string comparison_section(const std::vector<RunLog>& runs) {
  std::string html =
      cat("<section><h2>runs side by side</h2><table class=\"scores\"><tr><th rowspan=\"2\">run</th>",
          "<th rowspan=\"2\">method</th><th rowspan=\"2\">last step</th>", std::string(kMeansHeader).substr(4));
  for (const RunLog& run : runs) {
    html += cat("<tr><td>", html_escape(run.name), "</td><td>", html_escape(run.setting("method")), "</td>");
    if (run.results.empty()) {
      html += "<td colspan=\"7\">no result</td></tr>";
      continue;
    }
    html += cat("<td>", run.results.back().step, "</td>", means_cells(run.results.back().means), "</tr>");
  }
  html += "</table><div class=\"charts\">";
  for (int excluded = 0; excluded < 2; ++excluded) {
    LineChart chart{excluded ? "all mIoU (%), background excluded (MiB)" : "all mIoU (%), background included (PLOP)",
                    "step",
                    "mIoU (%)",
                    true,
                    100,
                    {}};
    for (size_t k = 0; k < runs.size(); ++k) {
      Series s{runs[k].name, kRunColours[k % std::size(kRunColours)], false, {}};
      for (const RunScores& r : runs[k].results) {
        s.points.emplace_back(r.step, 100 * (excluded ? r.means.all_without_background : r.means.all_with_background));
      }
      chart.series.push_back(std::move(s));
    }
    html += render_line_chart(chart);
  }
  return html + "</div></section>";
}

constexpr const char* kStyle =
    "body{font:14px/1.4 sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "h3{font-size:15px;margin:18px 0 6px}"
    "table{border-collapse:collapse;margin:8px 0;background:#fff}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
    "table.setting th,table.setting td{text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
    "svg{border:1px solid #ddd;font:11px sans-serif}svg .grid{stroke:#e5e5e5}"
    "svg .frame{fill:none;stroke:#888}svg .chart-title{font-size:13px;font-weight:bold}"
    ".note,.from{color:#666}figure{display:inline-block;margin:6px}"
    "figure img{image-rendering:pixelated;border:1px solid #ddd}figcaption{font-size:11px;color:#666}";

}  // namespace

std::string render_report_html(const std::vector<RunLog>& runs) {
  std::string html = cat("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>strata report</title>",
                         "<style>", kStyle, "</style></head><body><h1>strata report: ", runs.size(), " run",
                         runs.size() == 1 ? "" : "s", "</h1><ul>");
  for (size_t k = 0; k < runs.size(); ++k) {
    html += cat("<li><a href=\"#run-", k, "\">", html_escape(runs[k].name), "</a> ",
                html_escape(runs[k].setting("method")), "</li>");
  }
  html += "</ul>";
  if (runs.size() > 1) html += comparison_section(runs);
  for (size_t k = 0; k < runs.size(); ++k) html += run_section(runs[k], k);
  return html + "</body></html>\n";
}

}  // namespace strata::incremental
