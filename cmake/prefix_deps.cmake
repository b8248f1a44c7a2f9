# Dependencies from RAYVAULT_DEPS_PREFIX (include/ and lib/), static, for cross builds.
set(_inc "${RAYVAULT_DEPS_PREFIX}/include")
set(_lib "${RAYVAULT_DEPS_PREFIX}/lib")
foreach(_file "${_lib}/libsodium.a" "${_lib}/libsqlitecpp.a" "${_lib}/libsqlite3.a" "${_lib}/libmicrohttpd.a" "${_inc}/httplib.h")
  if(NOT EXISTS "${_file}")
    message(FATAL_ERROR "missing ${_file}: run tools/windows/cross_build.sh")
  endif()
endforeach()

add_library(rayvault::sodium STATIC IMPORTED)
set_target_properties(rayvault::sodium PROPERTIES IMPORTED_LOCATION "${_lib}/libsodium.a"
  INTERFACE_INCLUDE_DIRECTORIES "${_inc}" INTERFACE_COMPILE_DEFINITIONS "SODIUM_STATIC")

add_library(rayvault_sqlite3 STATIC IMPORTED)
set_target_properties(rayvault_sqlite3 PROPERTIES IMPORTED_LOCATION "${_lib}/libsqlite3.a")
add_library(rayvault::sqlitecpp STATIC IMPORTED)
set_target_properties(rayvault::sqlitecpp PROPERTIES IMPORTED_LOCATION "${_lib}/libsqlitecpp.a"
  INTERFACE_INCLUDE_DIRECTORIES "${_inc}" INTERFACE_LINK_LIBRARIES rayvault_sqlite3)

add_library(rayvault::microhttpd STATIC IMPORTED)
set_target_properties(rayvault::microhttpd PROPERTIES IMPORTED_LOCATION "${_lib}/libmicrohttpd.a"
  INTERFACE_INCLUDE_DIRECTORIES "${_inc}" INTERFACE_COMPILE_DEFINITIONS "MHD_W32LIB")
if(WIN32)
  target_link_libraries(rayvault::microhttpd INTERFACE ws2_32)
endif()

# The full single-header httplib; no TLS (the tailnet encrypts; OpenSSL for Windows is optional).
add_library(rayvault::httplib INTERFACE IMPORTED)
set_target_properties(rayvault::httplib PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
if(WIN32)
  target_compile_definitions(rayvault::httplib INTERFACE _WIN32_WINNT=0x0A00 NOMINMAX WIN32_LEAN_AND_MEAN)
  target_link_libraries(rayvault::httplib INTERFACE ws2_32)
endif()
if(RAYVAULT_WINDOWS_OPENSSL)
  find_package(OpenSSL REQUIRED)
  target_compile_definitions(rayvault::httplib INTERFACE CPPHTTPLIB_OPENSSL_SUPPORT)
  target_link_libraries(rayvault::httplib INTERFACE OpenSSL::SSL OpenSSL::Crypto crypt32)
endif()

foreach(_name json cli11 doctest)
  add_library(rayvault::${_name} INTERFACE IMPORTED)
  set_target_properties(rayvault::${_name} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
endforeach()
add_library(rayvault::fmt INTERFACE IMPORTED)
set_target_properties(rayvault::fmt PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}"
  INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY")
