# Dependencies from Debian's packages.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(SQLiteCpp REQUIRED)
find_package(doctest REQUIRED)
# SHA-256 of files and streams through OpenSSL's libcrypto where it is found: it uses the CPU's SHA
# instructions (about 4x libsodium's portable code here, which limited artifact transfers).
find_package(OpenSSL QUIET COMPONENTS Crypto)

add_library(rayvault::sodium ALIAS PkgConfig::SODIUM)
add_library(rayvault::httplib ALIAS PkgConfig::HTTPLIB)
add_library(rayvault::microhttpd ALIAS PkgConfig::MICROHTTPD)
add_library(rayvault::json ALIAS nlohmann_json::nlohmann_json)
add_library(rayvault::fmt ALIAS fmt::fmt)
add_library(rayvault::cli11 ALIAS CLI11::CLI11)
add_library(rayvault::sqlitecpp ALIAS SQLiteCpp)
add_library(rayvault::doctest ALIAS doctest::doctest)
