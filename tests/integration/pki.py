"""pki: certificates for the TLS tests, made with GnuTLS's certtool inside the
test run: a root CA, an intermediate, node certificates with subjectAltNames,
and the broken ones (expired, not yet valid, wrong CA, wrong name).

    ca = PKI(workdir)                       # root + intermediate
    leaf = ca.leaf("node", cn="tptac9.test", dns=["a.tptac9.test", "b.tptac9.test"])
    leaf.key, leaf.cert, ca.bundle          # files: key (0600), cert, intermediate+root
"""

import os
import shutil
import subprocess


def certtool():
    path = shutil.which("certtool")
    if path is None:
        raise RuntimeError("certtool not found: apt-get install gnutls-bin")
    return path


class Cert:
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert


class PKI:
    """A root CA and an intermediate CA under dir/NAME; leaves signed by the intermediate."""

    def __init__(self, workdir, name="pki", cn="xcomp test"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.root = self._make("root", ["cn = \"%s root CA\"" % cn, "ca", "cert_signing_key",
                                        "expiration_days = 3650"])
        self.inter = self._make("inter", ["cn = \"%s intermediate CA\"" % cn, "ca",
                                          "cert_signing_key", "expiration_days = 3650"],
                                signer=self.root)
        # The seed's bundle: intermediates first, the root last.
        self.bundle = self._cat("bundle.pem", [self.inter.cert, self.root.cert])
        self.ca = self.root.cert

    def _run(self, *args):
        r = subprocess.run([certtool()] + list(args), capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("certtool %s: %s" % (" ".join(args), r.stderr))

    def _cat(self, name, files):
        path = os.path.join(self.dir, name)
        with open(path, "w") as out:
            for f in files:
                with open(f) as inp:
                    out.write(inp.read())
        return path

    def _make(self, name, template, signer=None):
        key = os.path.join(self.dir, name + ".key")
        cert = os.path.join(self.dir, name + ".pem")
        tmpl = os.path.join(self.dir, name + ".tmpl")
        with open(tmpl, "w") as f:
            f.write("\n".join(template) + "\n")
        self._run("--generate-privkey", "--key-type", "ecdsa", "--outfile", key)
        os.chmod(key, 0o600)
        if signer is None:
            self._run("--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                      "--outfile", cert)
        else:
            self._run("--generate-certificate", "--load-privkey", key, "--load-ca-privkey",
                      signer.key, "--load-ca-certificate", signer.cert, "--template", tmpl,
                      "--outfile", cert)
        return Cert(key, cert)

    def leaf(self, name, cn, dns=(), ips=(), expired=False, future=False, client=False,
             signer=None):
        """A certificate signed by the intermediate (or signer)."""
        t = ["cn = \"%s\"" % cn, "signing_key", "encryption_key",
             "tls_www_client" if client else "tls_www_server"]
        t += ["dns_name = \"%s\"" % d for d in dns]
        t += ["ip_address = \"%s\"" % i for i in ips]
        if expired:
            t += ["activation_date = \"2020-01-01 00:00:00\"",
                  "expiration_date = \"2021-01-01 00:00:00\""]
        elif future:
            t += ["activation_date = \"2035-01-01 00:00:00\"",
                  "expiration_date = \"2036-01-01 00:00:00\""]
        else:
            t += ["expiration_days = 365"]
        return self._make(name, t, signer=signer or self.inter)
