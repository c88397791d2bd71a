// The OpenSSL configurations raftkvd's listeners and dialers build from
// their TlsFiles (server_config.h): a listener presents the certificate and,
// with client_cert_auth, requires one chaining to trusted_ca_file; a dialer
// (a node dialing a peer) presents the same certificate and checks the
// listener's against trusted_ca_file and the address it dialed.
// Never reads a file itself (tls.h does, and reloads them).
#pragma once

#include "client/tls.h"
#include "server/server_config.h"

namespace raftkv::server {

wire::TlsConfig ListenerTlsConfig(const TlsFiles& files);
wire::TlsConfig DialerTlsConfig(const TlsFiles& files);

// How long a new connection may take to finish its TLS handshake.
constexpr std::chrono::milliseconds kTlsHandshakeTimeout{10000};

}  // namespace raftkv::server
