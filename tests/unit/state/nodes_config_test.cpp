// nodes.json: defaults, and every malformed field named in a config error.
#include <doctest/doctest.h>

#include "state/nodes_config.hpp"

using namespace rayvault;
using namespace rayvault::state;

namespace {
std::string error_of(const std::string& text) {
  auto r = parse_nodes_config(text);
  if (r.ok()) return "ok";
  CHECK(r.error().kind == ErrorKind::config);
  return r.error().message;
}
}  // namespace

TEST_CASE("state::parse_nodes_config") {
  SUBCASE("the contract's defaults") {
    auto r = parse_nodes_config(R"({"cluster_name":"studio","nodes":[{"node_id":"win-gpu","host":"100.64.0.7"}]})");
    REQUIRE(r.ok());
    CHECK(r->state_dir == "state/cluster");
    CHECK(r->controller.request_timeout_sec == 15.0);
    CHECK(r->controller.poll_interval_sec == 2.0);
    CHECK(r->controller.poll_timeout_sec == 900.0);
    CHECK(r->controller.local_workspace_root == std::filesystem::path("state/cluster/local_worker"));
    REQUIRE(r->nodes.size() == 1);
    CHECK(r->nodes[0].port == 8787);
    CHECK(r->nodes[0].role == "worker");
    CHECK(r->nodes[0].enabled);
    CHECK(r->nodes[0].timeout_sec == 20.0);
    CHECK(r->nodes[0].takes_jobs());
  }
  SUBCASE("only enabled workers take jobs") {
    auto r = parse_nodes_config(R"({"nodes":[{"node_id":"a","host":"h","enabled":false},)"
                                R"({"node_id":"b","host":"h","role":"controller"}]})");
    REQUIRE(r.ok());
    CHECK_FALSE(r->nodes[0].takes_jobs());
    CHECK_FALSE(r->nodes[1].takes_jobs());
  }
  SUBCASE("malformed documents") {
    CHECK(error_of("[]") == "nodes.json: the document must be an object");
    CHECK(error_of("{") .find("nodes.json: malformed JSON") == 0);
    CHECK(error_of(R"({"nodes":{}})") == "nodes.json: nodes must be a list");
    CHECK(error_of(R"({"nodes":[{"host":"h"}]})") == "nodes.json: nodes[0].node_id is required");
    CHECK(error_of(R"({"nodes":[{"node_id":"../x","host":"h"}]})").find("nodes[0].node_id may hold only") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"h"},{"node_id":"a","host":"h"}]})") ==
          "nodes.json: duplicate node_id 'a'");
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"http://h/x"}]})").find("nodes[0].host must be") != std::string::npos);
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"h","port":70000}]})") ==
          "nodes.json: nodes[0].port must be an integer in 1..65535");
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"h","port":"80"}]})") == "nodes.json: nodes[0].port has the wrong type");
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"h","enabled":"yes"}]})") ==
          "nodes.json: nodes[0].enabled has the wrong type");
    CHECK(error_of(R"({"nodes":[{"node_id":"a","host":"h","timeout_sec":0}]})") ==
          "nodes.json: nodes[0].timeout_sec must be positive");
    CHECK(error_of(R"({"controller":{"poll_timeout_sec":-1}})") == "nodes.json: controller.poll_timeout_sec must be positive");
    CHECK(error_of(R"({"auth":{"secret_env":5}})") == "nodes.json: auth.secret_env has the wrong type");
  }
}
