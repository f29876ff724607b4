// Run reports (incremental/run_report.h) from small logs written here as the trainer writes them:
// the numbers the tables show, one SVG per chart, shared earlier steps, embedded prediction
// strips, escaping, and errors naming the file and line.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/error.h"
#include "incremental/run_report.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using namespace strata::incremental;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream file(path);
  for (const std::string& line : lines) file << line << '\n';
}

// The scores' fields of a result or eval record: `means` are the six old/new/all values with
// background, then without, as JSON (null: no class of the group has ground truth).
std::string scores(int step, const std::vector<std::string>& means, const std::string& iou) {
  const char* keys[] = {"old_with_background",    "new_with_background",    "all_with_background",
                        "old_without_background", "new_without_background", "all_without_background"};
  std::string out = cat("\"step\":", step, ",\"images\":100,\"miou\":", means[2]);
  for (size_t k = 0; k < 6; ++k) out += cat(",\"", keys[k], "\":", means[k]);
  return out + ",\"iou\":[" + iou + "]";
}

// A two-step run of task 2-1 (background + classes 1, 2 at step 0; class 3 at step 1) named `name`,
// whose step 1 was run twice (the second result is the one that counts).
std::vector<std::string> two_step_log(const std::string& name, const std::string& method) {
  return {
      cat(R"({"event":"run","dataset":"voc","task":"2-1","task_description":"voc 2-1 overlapped","steps":"all",)",
          R"("protocol":"overlapped","convention":"plop","method":")", method,
          R"(","model":"DeepLabV3 (mib head) on small","seed":42,"device":"cpu","precision":"f32","name":")", name,
          "\"}"),
      R"({"event":"step_start","step":0,"classes":"1,2","channel_names":["background","cat","dog"],"epochs":30,)"
      R"j("lr":0.05,"batch_size":8,"crop_size":64,"method":"FT (ce)","training_images":80,"max_iterations":300})j",
      R"({"event":"train","step":0,"epoch":0,"iteration":10,"loss":2.5,"ce":2.5,"lr":0.05,"grad_norm":1.0})",
      R"({"event":"train","step":0,"epoch":1,"iteration":20,"loss":1.5,"ce":1.5,"lr":0.04,"grad_norm":1.0})",
      R"({"event":"checkpoint","step":0,"epoch":30,"iteration":300,"complete":true,"path":"runs/c_0.safetensors"})",
      cat(R"({"event":"result","what":"test",)",
          scores(0, {"0.8", "null", "0.8", "0.75", "null", "0.75"}, "0.9,0.7,0.8"), "}"),
      R"({"event":"step_start","step":1,"classes":"3","channel_names":["background","cat","dog","bird"],)"
      R"("epochs":15,"lr":0.005,"batch_size":8,"crop_size":64,"method":"MiB","training_images":40,)"
      R"("max_iterations":75,"previous_checkpoint":"runs/c_0.safetensors"})",
      R"({"event":"train","step":1,"epoch":0,"iteration":10,"loss":9.0,"unce":8.0,"unkd":1.0,"lr":0.005})",
      cat(R"({"event":"result","what":"test",)",
          scores(1, {"0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}, "0.1,0.2,null,0.5"), "}"),
      R"({"event":"train","step":1,"epoch":0,"iteration":10,"loss":0.75,"unce":0.5,"unkd":0.25,"lr":0.005})",
      R"({"event":"eval","step":1,"epoch":5,"iteration":25,"seconds":1.0,)" +
          scores(1, {"0", "0", "0", "0", "0", "0"}, "0") + "}",
      cat(R"({"event":"result","what":"test",)",
          scores(1, {"0.412", "0.305", "0.389", "0.371", "0.298", "0.352"}, "0.9,0.25,null,0.305"), "}"),
  };
}

}  // namespace

TEST_CASE("a run's log reads into its setting, steps, results and losses, and a step's last record wins", "[cpu]") {
  test::TempDir dir("run_report_read");
  const std::string log = dir / "logs/2-1-voc_mib_run.jsonl";
  write_lines(log, two_step_log("mib_run", "MiB (unce, unkd x10, init_balanced)"));
  const std::vector<RunLog> runs = read_runs({dir.str()});
  REQUIRE(runs.size() == 1);
  const RunLog& run = runs[0];
  CHECK(run.name == "mib_run");
  CHECK(run.task == "2-1");
  CHECK(run.dataset == "voc");
  CHECK(run.setting("protocol") == "overlapped");
  CHECK(run.setting("method") == "MiB (unce, unkd x10, init_balanced)");
  CHECK(run.setting("seed") == "42");
  REQUIRE(run.steps.size() == 2);
  CHECK(run.steps[1].epochs == 15);
  CHECK(run.steps[1].lr == Approx(0.005));
  CHECK(run.channel_names(5) == std::vector<std::string>{"background", "cat", "dog", "bird", "channel 4"});
  REQUIRE(run.results.size() == 2);
  CHECK(std::isnan(run.results[0].means.new_with_background));
  CHECK(run.results[1].means.old_with_background == Approx(0.412));
  CHECK(run.results[1].means.new_without_background == Approx(0.298));
  REQUIRE(run.results[1].iou.size() == 4);
  CHECK(std::isnan(run.results[1].iou[2]));
  CHECK(run.evaluations.size() == 1);
  REQUIRE(run.losses.size() == 3);  // step 1's iteration 10 twice: the later record
  CHECK(run.losses[2].loss == Approx(0.75));
  CHECK(run.losses[2].terms == std::vector<std::pair<std::string, double>>{{"unce", 0.5}, {"unkd", 0.25}});
  CHECK(run.losses[0].terms == std::vector<std::pair<std::string, double>>{{"ce", 2.5}});
  CHECK(run.checkpoints == std::vector<std::pair<int, std::string>>{{0, "runs/c_0.safetensors"}});
}

TEST_CASE("the report page shows each step's old/new/all in both conventions, one svg per chart", "[cpu]") {
  test::TempDir dir("run_report_page");
  write_lines(dir / "logs/2-1-voc_mib_run.jsonl", two_step_log("mib_run", "MiB"));
  const std::string html = render_report_html(read_runs({dir.str()}));
  // Step 1's row: mIoU, then old/new/all with background and without, in percent with one decimal.
  CHECK_THAT(html, Catch::Contains("<td>38.9</td><td>41.2</td><td>30.5</td><td>38.9</td><td>37.1</td><td>29.8</td>"
                                   "<td>35.2</td></tr>"));
  // Step 0's "new" has no classes: "-".
  CHECK_THAT(html, Catch::Contains("<td>80.0</td><td>-</td><td>80.0</td><td>75.0</td><td>-</td><td>75.0</td>"));
  // The recipe and setting.
  CHECK_THAT(html, Catch::Contains("<td>1</td><td>3</td><td>MiB</td><td>15</td><td>8</td><td>64</td><td>0.005</td>"));
  CHECK_THAT(html, Catch::Contains("<th>protocol</th><td>overlapped</td>"));
  // The heat map names the classes and shows a class without ground truth as X.
  CHECK_THAT(html, Catch::Contains(">3 bird</text>"));
  CHECK_THAT(html, Catch::Contains(">30.5</text>"));
  CHECK_THAT(html, Catch::Contains(">X</text>"));
  // mIoU over steps, the heat map, the losses of steps 0 and 1.
  CHECK(count(html, "<svg") == 4);
  CHECK(count(html, "</svg>") == 4);
  CHECK_THAT(html, Catch::Contains(">unkd</text>"));
  // Self-contained: nothing is loaded.
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "<link") == 0);
  CHECK(count(html, "http://") == count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST_CASE("the report escapes every string from the logs", "[cpu]") {
  test::TempDir dir("run_report_escape");
  write_lines(dir / "logs/2-1-voc_x.jsonl", two_step_log("<script>alert('x')</script>", R"(FT & \"more\" <b>)"));
  const std::string html = render_report_html(read_runs({dir.str()}));
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "<b>") == 0);
  CHECK_THAT(html, Catch::Contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  CHECK_THAT(html, Catch::Contains("FT &amp; &quot;more&quot; &lt;b&gt;"));
  CHECK(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}

TEST_CASE("several runs: their last steps side by side, and a run from another's checkpoint shows its steps", "[cpu]") {
  test::TempDir dir("run_report_several");
  std::vector<std::string> step0 = two_step_log("step0", "FT");
  step0.resize(6);  // the run record and step 0
  write_lines(dir / "logs/2-1-voc_a_step0.jsonl", step0);
  std::vector<std::string> step1 = two_step_log("ft", "FT (ce)");
  step1.erase(step1.begin() + 1, step1.begin() + 6);  // step 1 only, from step0's checkpoint
  write_lines(dir / "logs/2-1-voc_b_ft.jsonl", step1);
  const std::vector<RunLog> runs = read_runs({dir.str()});
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].name == "step0");
  REQUIRE(runs[1].results.size() == 2);
  CHECK(runs[1].results[0].from == "step0");
  CHECK(runs[1].results[0].means.old_with_background == Approx(0.80));
  CHECK(runs[1].results[1].from.empty());
  const std::string html = render_report_html(runs);
  CHECK_THAT(html, Catch::Contains("runs side by side"));
  // The side-by-side rows: each run's last step.
  CHECK_THAT(html, Catch::Contains("<tr><td>step0</td><td>FT</td><td>0</td><td>80.0</td><td>-</td>"));
  CHECK_THAT(html, Catch::Contains("<tr><td>ft</td><td>FT (ce)</td><td>1</td><td>41.2</td><td>30.5</td><td>38.9</td>"));
  CHECK_THAT(html, Catch::Contains("0 <span class=\"from\">(step0)</span>"));
  // Two comparison charts, then per run: mIoU and heat map, and a loss chart per step logged.
  CHECK(count(html, "<svg") == 2 + (2 + 1) + (2 + 1));
}

TEST_CASE("prediction strips are embedded as data URIs, the first ones of each step", "[cpu]") {
  test::TempDir dir("run_report_predictions");
  write_lines(dir / "logs/2-1-voc_mib_run.jsonl", two_step_log("mib_run", "MiB"));
  data::Image image(4, 6, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37);
  const std::string png = data::encode_png(image);
  for (int step : {0, 1}) {
    const std::filesystem::path folder = dir.path() / "predictions" / "mib_run" / cat("step", step);
    std::filesystem::create_directories(folder);
    for (int k = 0; k < 3; ++k) std::ofstream(folder / cat("image", k, ".png"), std::ios::binary) << png;
    std::ofstream(folder / "notes.txt") << "not a picture";
  }
  const std::vector<RunLog> runs = read_runs({dir.str()}, 2);
  REQUIRE(runs[0].predictions.size() == 4);
  CHECK(runs[0].prediction_files == 6);
  CHECK(runs[0].predictions[1].path == (dir.path() / "predictions/mib_run/step0/image1.png").string());
  CHECK(runs[0].predictions[2].step == 1);
  const std::string html = render_report_html(runs);
  CHECK(count(html, "src=\"data:image/png;base64," + base64(png) + "\"") == 4);
  CHECK(read_runs({dir.str()}, 0)[0].predictions.empty());
}

TEST_CASE("base64 follows RFC 4648's test vectors", "[cpu]") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foob") == "Zm9vYg==");
  CHECK(base64("fooba") == "Zm9vYmE=");
  CHECK(base64("foobar") == "Zm9vYmFy");
  CHECK(base64(std::string("\xff\x00\x80", 3)) == "/wCA");
}

TEST_CASE("report errors name the run directory, or the log file and line", "[cpu]") {
  test::TempDir dir("run_report_errors");
  CHECK_THROWS_WITH(read_runs({dir / "absent"}),
                    Catch::Contains("the run directory " + (dir / "absent") + " does not exist"));
  CHECK_THROWS_WITH(read_runs({dir.str()}), Catch::Contains(dir.str() + " holds no run logs"));
  std::vector<std::string> lines = two_step_log("mib_run", "MiB");
  const std::string log = dir / "logs/2-1-voc_mib_run.jsonl";
  lines[2] = R"({"event":"train","step":0,"iteration":10,"loss":2.)";  // cut short, as by a full disk
  write_lines(log, lines);
  CHECK_THROWS_WITH(read_runs({dir.str()}), Catch::Contains(log + ":3: not a training log record"));
  lines = two_step_log("mib_run", "MiB");
  lines[5] = R"({"event":"result","step":"zero"})";  // a field of the wrong kind
  write_lines(log, lines);
  CHECK_THROWS_WITH(read_runs({dir.str()}), Catch::Contains(log + ":6: "));
  lines[5] = "[1, 2]";
  write_lines(log, lines);
  CHECK_THROWS_WITH(read_runs({dir.str()}), Catch::Contains(log + ":6: "));
}
