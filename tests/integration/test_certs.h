// Throwaway certificates for the TLS tests, made with the openssl command
// in a fresh temporary directory: CAs, and certificates they sign for
// 127.0.0.1 (subjectAltName IP:127.0.0.1, usable as server and client).
// Test-only; writes nothing outside its directory, which it removes.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace raftkv::integration {

class TestCerts {
 public:
  TestCerts() {
    char tmpl[] = "/tmp/raftkv-certs-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
  ~TestCerts() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // A self-signed CA: `name`.crt and `name`.key.
  bool MakeCa(const std::string& name) {
    return Run(
        "openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=" +
        name + " -keyout " + key(name) + " -out " + cert(name));
  }
  // `name`.crt/.key signed by CA `ca`, common name `name`, serial `serial`.
  bool MakeCert(const std::string& name, const std::string& ca, int serial) {
    const std::string ext = dir_ + "/" + name + ".ext";
    const std::string csr = dir_ + "/" + name + ".csr";
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1\n"
                          "extendedKeyUsage=serverAuth,clientAuth\n";
    return Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
               "-nodes -subj /CN=" +
               name + " -keyout " + key(name) + " -out " + csr) &&
           Run("openssl x509 -req -days 30 -in " + csr + " -CA " + cert(ca) +
               " -CAkey " + key(ca) + " -set_serial " + std::to_string(serial) +
               " -extfile " + ext + " -out " + cert(name));
  }

  std::string cert(const std::string& name) const {
    return dir_ + "/" + name + ".crt";
  }
  std::string key(const std::string& name) const {
    return dir_ + "/" + name + ".key";
  }
  const std::string& dir() const { return dir_; }

 private:
  static bool Run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
  }
  std::string dir_;
};

}  // namespace raftkv::integration
