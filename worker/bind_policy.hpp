// Which addresses a worker may listen on without being told otherwise on purpose.
#pragma once

#include <string_view>

namespace rayvault::worker {

// True for loopback (127.0.0.0/8, ::1, "localhost") and tailnet addresses (100.64.0.0/10,
// fd7a:115c:a1e0::/48). Wildcards and every other address answer false.
bool is_loopback_or_tailnet(std::string_view host);

}  // namespace rayvault::worker
