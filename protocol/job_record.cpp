// JobRecord <-> wire JSON.
#include "protocol/job_record.hpp"

#include <algorithm>

namespace rayvault::protocol {
namespace {

// Unset text is "" on the wire, never null: the Python clients write str(record.get(key, "")).
json optional_text(const std::optional<std::string>& v) { return v ? json(*v) : json(""); }

std::optional<std::string> optional_text_from(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return std::nullopt;
  return it->get<std::string>();
}

// A JSON string as dump_json writes it: plain printable ASCII is copied; anything else (escapes,
// non-ASCII, invalid UTF-8 replaced) goes through the JSON library itself.
void put_string(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (plain) {
    out.push_back('"');
    out.append(s);
    out.push_back('"');
  } else {
    out += dump_json(json(std::string(s)));
  }
}

}  // namespace

std::string record_json(const JobRecord& r) {
  // The keys in the order dump_json writes them (sorted).
  std::string out;
  out.reserve(1024);
  const auto key = [&out](const char* k) {
    out += out.empty() ? "{\"" : ",\"";
    out += k;
    out += "\":";
  };
  const auto text = [&](const char* k, std::string_view v) {
    key(k);
    put_string(out, v);
  };
  key("artifacts");
  out += dump_json(r.artifacts);
  text("cached_job_id", r.cached_job_id);
  text("created_at", r.created_at);
  text("error_code", r.error_code);
  text("error_message", r.error_message);
  key("exit_code");
  out += std::to_string(r.exit_code.value_or(0));
  text("finished_at", r.finished_at.value_or(""));
  key("idempotent");
  out += r.idempotent ? "true" : "false";
  text("inputs_hash", r.inputs_hash);
  text("job_id", r.job_id);
  text("log_path", r.log_path);
  text("message", r.message);
  key("metrics");
  out += dump_json(r.metrics);
  key("progress");
  out += dump_json(json(r.progress));
  text("receipt_path", r.receipt_path);
  text("run_id", r.run_id);
  text("started_at", r.started_at.value_or(""));
  text("status", r.status);
  text("step_name", r.step_name);
  text("worker_id", r.worker_id);
  out += '}';
  return out;
}

bool is_terminal_status(std::string_view s) {
  return s == status::kSucceeded || s == status::kFailed || s == status::kCancelled || s == "completed" ||
         s == "error";
}

json to_json(const JobRecord& r) {
  return json{{"run_id", r.run_id},
              {"job_id", r.job_id},
              {"step_name", r.step_name},
              {"inputs_hash", r.inputs_hash},
              {"status", r.status},
              {"progress", r.progress},
              {"message", r.message},
              {"created_at", r.created_at},
              {"started_at", optional_text(r.started_at)},
              {"finished_at", optional_text(r.finished_at)},
              {"exit_code", r.exit_code.value_or(0)},
              {"metrics", r.metrics},
              {"artifacts", r.artifacts},
              {"error_code", r.error_code},
              {"error_message", r.error_message},
              {"idempotent", r.idempotent},
              {"cached_job_id", r.cached_job_id},
              {"worker_id", r.worker_id},
              {"log_path", r.log_path},
              {"receipt_path", r.receipt_path}};
}

JobRecord job_record_from_json(const json& j) {
  JobRecord r;
  if (!j.is_object()) return r;
  r.run_id = string_field(j, "run_id");
  r.job_id = string_field(j, "job_id");
  r.step_name = string_field(j, "step_name");
  r.inputs_hash = string_field(j, "inputs_hash");
  r.status = string_field(j, "status");
  if (j.contains("progress") && j["progress"].is_number()) r.progress = j["progress"].get<double>();
  r.message = string_field(j, "message");
  r.created_at = string_field(j, "created_at");
  r.started_at = optional_text_from(j, "started_at");
  r.finished_at = optional_text_from(j, "finished_at");
  if (j.contains("exit_code") && j["exit_code"].is_number_integer()) r.exit_code = j["exit_code"].get<int>();
  if (j.contains("metrics") && j["metrics"].is_object()) r.metrics = j["metrics"];
  if (j.contains("artifacts") && j["artifacts"].is_array()) r.artifacts = j["artifacts"];
  r.error_code = string_field(j, "error_code");
  r.error_message = string_field(j, "error_message");
  const auto idem = j.find("idempotent");
  r.idempotent = idem != j.end() && idem->is_boolean() && idem->get<bool>();
  r.cached_job_id = string_field(j, "cached_job_id");
  r.worker_id = string_field(j, "worker_id");
  r.log_path = string_field(j, "log_path");
  r.receipt_path = string_field(j, "receipt_path");
  return r;
}

}  // namespace rayvault::protocol
