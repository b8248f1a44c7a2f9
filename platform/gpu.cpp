// NVIDIA GPUs as nvidia-smi lists them (the same tool and output on Linux and Windows).
#include <cstdlib>
#include <sstream>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "util/strings.hpp"

namespace rayvault::platform {

std::vector<GpuInfo> parse_nvidia_smi_gpus(const std::string& csv) {
  std::vector<GpuInfo> out;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::size_t start = 0;
    while (true) {
      const auto comma = line.find(',', start);
      cols.push_back(util::trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (cols.size() < 4 || cols[0].empty() || cols[0].find_first_not_of("0123456789") != std::string::npos) continue;
    char* end = nullptr;
    const double mib = std::strtod(cols[2].c_str(), &end);
    if (cols[1].empty() || end == cols[2].c_str()) continue;
    out.push_back({cols[0], cols[1], cols[3], mib});
  }
  return out;
}

std::vector<GpuInfo> nvidia_gpus() {
  if (find_executable("nvidia-smi").empty()) return {};
  ProcessSpec spec;
  spec.argv = {"nvidia-smi", "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"};
  spec.timeout = std::chrono::seconds(15);
  auto res = run_process(spec);
  if (!res || res->exit_code != 0) return {};
  return parse_nvidia_smi_gpus(res->stdout_text);
}

}  // namespace rayvault::platform
