// Fuzz targets for the parsers that read untrusted bytes. Each returns false when an invariant
// breaks; the libFuzzer entry points abort on false, the corpus replay test CHECKs it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rayvault::fuzz {

// parse_json, then canonical JSON is a fixed point: canonical(parse(canonical(v))) == canonical(v),
// and inputs_hash is stable; python_str of the ordered parse does not crash.
bool json_target(const std::uint8_t* data, std::size_t size);

// parse_nodes_config accepts or refuses with a config error, and what it accepts is well-formed.
bool nodes_config_target(const std::uint8_t* data, std::size_t size);

// A request body through envelope extraction and the contract's ordered checks.
bool envelope_target(const std::uint8_t* data, std::size_t size);

}  // namespace rayvault::fuzz
