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
  SUBCASE("refused: not JSON, not an object, or an unusable top-level field") {
    CHECK(error_of("[]") == "nodes.json: the document must be an object");
    CHECK(error_of("{").find("nodes.json: malformed JSON") == 0);
    CHECK(error_of(R"({"nodes":{}})") == "nodes.json: nodes must be a list");
    CHECK(error_of(R"({"auth":[]})") == "nodes.json: auth must be an object");
    CHECK(error_of(R"({"auth":{"secret_env":[5]}})") == "nodes.json: auth.secret_env must be text");
    CHECK(error_of(R"({"controller":{"poll_timeout_sec":"soon"}})") == "nodes.json: controller.poll_timeout_sec must be a number");
  }
  SUBCASE("what the Python controller accepts is accepted, each interpretation said") {
    auto r = parse_nodes_config(R"({"controller":{"poll_timeout_sec":-1,"request_timeout_sec":"30"},"nodes":[)"
                                R"({"node_id":" win-gpu ","host":" 100.64.0.7 ","port":"8788","enabled":"true","timeout_sec":0},)"
                                R"({"node_id":"mac","host":"h","enabled":0,"tags":"edit"},)"
                                R"({"node_id":"lin","host":"h","enabled":"no","role":" Worker "},)"
                                R"({"node_id":"lin2","host":"h","enabled":1}]})");
    REQUIRE(r.ok());
    CHECK(r->controller.poll_timeout_sec == 900.0);
    CHECK(r->controller.request_timeout_sec == 30.0);
    REQUIRE(r->nodes.size() == 4);
    CHECK(r->nodes[0].node_id == "win-gpu");
    CHECK(r->nodes[0].host == "100.64.0.7");
    CHECK(r->nodes[0].port == 8788);
    CHECK(r->nodes[0].enabled);
    CHECK(r->nodes[0].timeout_sec == 20.0);
    CHECK_FALSE(r->nodes[1].enabled);
    CHECK(r->nodes[1].tags == std::vector<std::string>{"edit"});
    CHECK_FALSE(r->nodes[2].enabled);
    CHECK(r->nodes[2].role == "worker");
    CHECK(r->nodes[3].enabled);
    const std::vector<std::string> expected{
        "nodes.json: controller.poll_timeout_sec must be positive; using 900.0",
        "nodes.json: nodes[0] ('win-gpu').enabled is \"true\", read as true",
        "nodes.json: nodes[0] ('win-gpu').timeout_sec must be positive; using 20.0",
        "nodes.json: nodes[1] ('mac').enabled is 0, read as false",
        "nodes.json: nodes[2] ('lin').enabled is \"no\", read as false",
        "nodes.json: nodes[3] ('lin2').enabled is 1, read as true"};
    CHECK(r->warnings == expected);
  }
  SUBCASE("an entry without node_id or host is skipped; an unusable one is listed as such") {
    auto r = parse_nodes_config(R"({"nodes":["w1",{"host":"h"},{"node_id":"  ","host":"h"},{"node_id":"a"},)"
                                R"({"node_id":"a2","host":["h"]},{"node_id":"gpu/1","host":"h"},)"
                                R"({"node_id":"b","host":"http://h/x"},{"node_id":"c","host":"h","port":70000},)"
                                R"({"node_id":"d","host":"h","port":"http"},{"node_id":"e","host":"h","enabled":[]},)"
                                R"({"node_id":"ok","host":"h"},{"node_id":"ok","host":"other"},)"
                                R"({"node_id":"studio pc: 2","host":"h"}]})");
    REQUIRE(r.ok());
    std::vector<std::pair<std::string, std::string>> nodes;
    for (const auto& n : r->nodes) nodes.emplace_back(n.node_id, n.unusable);
    const std::vector<std::pair<std::string, std::string>> expected_nodes{
        {"gpu/1", ""},
        {"b", "nodes.json: nodes[6] ('b') host must be a host name or address (no scheme, path or spaces)"},
        {"c", "nodes.json: nodes[7] ('c') port must be an integer in 1..65535"},
        {"d", "nodes.json: nodes[8] ('d') port must be a number"},
        {"e", "nodes.json: nodes[9] ('e') enabled must be true or false"},
        {"ok", ""},
        {"studio pc: 2", ""}};
    CHECK(nodes == expected_nodes);
    CHECK(r->nodes[5].host == "h");
    const std::vector<std::string> expected{
        "nodes.json: nodes[0] is not an object; skipped",
        "nodes.json: nodes[1] has no node_id; skipped",
        "nodes.json: nodes[2] has no node_id; skipped",
        "nodes.json: nodes[3] ('a') has no host; skipped",
        "nodes.json: nodes[4] ('a2') has no host; skipped",
        "nodes.json: nodes[6] ('b') host must be a host name or address (no scheme, path or spaces); the node is listed but not contacted",
        "nodes.json: nodes[7] ('c') port must be an integer in 1..65535; the node is listed but not contacted",
        "nodes.json: nodes[8] ('d') port must be a number; the node is listed but not contacted",
        "nodes.json: nodes[9] ('e') enabled must be true or false; the node is listed but not contacted",
        "nodes.json: nodes[11] repeats node_id 'ok'; skipped (the first entry is used)"};
    CHECK(r->warnings == expected);
  }
}
