# Sourced by the benchmarks: make_bench_ca writes root.pem, ca.pem, ca.key and ca.p12
# (password "pw") in the current folder, with the openssl CLI.
make_bench_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 \
        -subj "/CN=Bench Root" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout ca.key -out ca.csr -subj "/CN=Bench Issuing CA" 2>/dev/null
    printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nextendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > ca.ext
    openssl x509 -req -in ca.csr -CA root.pem -CAkey root.key -CAcreateserial -out ca.pem -days 1825 \
        -extfile ca.ext 2>/dev/null
    openssl pkcs12 -export -inkey ca.key -in ca.pem -certfile root.pem -out ca.p12 -passout pass:pw
}
