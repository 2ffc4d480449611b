"""certs - certificates made at test time with the openssl command, in a
test's temporary directory (no private key is kept in the tree).

    make_ca(d, "ca", "saker-test-ca")                 # d/ca.pem, d/ca.key
    make_leaf(d, "localhost", "DNS:localhost,IP:127.0.0.1")   # signed by d/ca
"""

import subprocess

EC_P256 = "ec -pkeyopt ec_paramgen_curve:P-256"


def sh(cmd, cwd):
    subprocess.run(cmd, shell=True, check=True, cwd=str(cwd), capture_output=True, timeout=60)


def make_ca(d, name, common_name, alg=EC_P256):
    sh("openssl req -x509 -newkey %s -nodes -keyout %s.key -out %s.pem -subj /CN=%s -days 2"
       % (alg, name, name, common_name), d)


def make_leaf(d, name, san, alg=EC_P256, ca="ca"):
    """A certificate for the subjectAltName san (its first name is the CN)."""
    (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
    sh("openssl req -newkey %s -nodes -keyout %s.key -out %s.csr -subj /CN=%s"
       % (alg, name, name, san.split(",")[0].split(":")[1]), d)
    sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 2 "
       "-out %s.pem -extfile %s.ext" % (name, ca, ca, name, name), d)
