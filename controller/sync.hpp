// Bringing a remote job home: its record, log and artifacts into the receipt folder
// state/cluster/receipts/<run_id>/<job_id>/, every artifact checked against its SHA-256.
#pragma once

#include <filesystem>
#include <string>

#include "controller/worker_client.hpp"
#include "state/nodes_config.hpp"

namespace rayvault::controller {

struct RemoteJob {
  const state::NodeEntry* node = nullptr;
  std::string run_id, job_id;  // as the controller submitted them
  std::string remote_job_id;   // the job the worker answers for (differs on idempotent hits)
  std::string step_name, inputs_hash;
  bool artifact_download = true;  // the worker serves artifact bytes (advertises artifact_download)
  json attempts;                  // every node tried; null: keep what the receipt already records
};

struct SyncOutcome {
  json receipt;               // what job_receipt.json now holds
  std::filesystem::path receipt_path;
  int downloaded = 0;         // artifacts fetched (or already here) and verified
  int failed = 0;             // artifacts that could not be fetched or did not verify
};

// Fetches the job's record (given, or asked for), log and artifact list; when the worker serves
// artifact bytes, downloads each artifact into artifacts/ (resuming partial files, skipping ones
// already verified) and keeps only those whose SHA-256 matches the worker's; writes worker.log and
// job_receipt.json (the Python controller's shape) atomically. Error when the worker cannot be
// reached or refuses; artifact failures are rows of the receipt's downloaded_artifacts.
Result<SyncOutcome> sync_remote_job(WorkerClient& client, const RemoteJob& job, const std::filesystem::path& receipt_dir,
                                    const json* known_record = nullptr);

}  // namespace rayvault::controller
