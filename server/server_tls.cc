// TlsFiles to OpenSSL configurations (see server_tls.h). No state.
#include "server/server_tls.h"

namespace raftkv::server {

wire::TlsConfig ListenerTlsConfig(const TlsFiles& files) {
  wire::TlsConfig config;
  config.role = wire::TlsConfig::Role::kServer;
  config.cert_file = files.cert_file;
  config.key_file = files.key_file;
  config.ca_file = files.trusted_ca_file;
  config.verify_peer = files.client_cert_auth;
  return config;
}

wire::TlsConfig DialerTlsConfig(const TlsFiles& files) {
  wire::TlsConfig config;
  config.role = wire::TlsConfig::Role::kClient;
  config.cert_file = files.cert_file;
  config.key_file = files.key_file;
  config.ca_file = files.trusted_ca_file;
  config.verify_peer = true;
  return config;
}

}  // namespace raftkv::server
