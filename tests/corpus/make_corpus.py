#!/usr/bin/env python3
"""Writes the raw request corpus: tests/corpus/{valid,invalid}/NAME.http.

Each file is one comment line, then the exact bytes to send:

    # expect: 200 404/HEAD ... close|open

the status of every response in order (/HEAD: the response to a HEAD
request, which has no body), then whether the server closes the connection
after the last one. tests/func/test_corpus.py replays every file. The .http
files are the corpus; this script only makes their bytes easy to review and
regenerate (`python3 make_corpus.py` in this directory).
"""
import os

H = b"Host: a\r\n"
CASES = {
    # ---- request smuggling and framing ------------------------------------
    "invalid/cl_te": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_cl": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    "invalid/smuggle_cl_te": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/smuggle_te_cl": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
    "invalid/smuggle_te_te": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    "invalid/smuggle_te_te_identity": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-encoding: identity\r\n\r\n0\r\n\r\n"),
    "invalid/cl_cl_differ": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    "invalid/cl_cl_same": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    "invalid/cl_plus": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello"),
    "invalid/cl_negative": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -5\r\n\r\nhello"),
    "invalid/cl_inner_space": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 5\r\n\r\nhello"),
    "invalid/cl_comma_list": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello"),
    "invalid/cl_hex": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello"),
    "invalid/cl_empty": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n"),
    "invalid/cl_overflow": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n"),
    "invalid/cl_space_before_colon": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\nhello"),
    "invalid/te_chunked_gzip": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    "invalid/te_gzip": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nhello"),
    "invalid/te_identity": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\nhello"),
    "invalid/te_chunked_then_x": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n"),
    "invalid/te_chunked_twice": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_xchunked": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_obs_fold": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_space_before_colon": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_in_http10": ("400 close", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "invalid/chunk_size_overflow": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n"),
    "invalid/chunk_size_negative": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_size_trailing_space": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_size_leading_space": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_size_not_hex": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_missing_crlf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n"),
    "invalid/chunk_data_too_long": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    "invalid/chunk_data_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nA\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/chunk_data_bare_cr": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nA\r0\r\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/chunk_data_extra_bytes": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nAxx0\r\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/chunk_data_no_delimiter": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nA0\r\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/chunk_size_bare_cr": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\rA\r\n0\r\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/last_chunk_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/last_chunk_end_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/last_chunk_end_cr_extra": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\rX" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/last_chunk_end_missing": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/trailer_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/trailer_end_bare_lf": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/trailer_obs_fold": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n" + b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/te_gzip_chunked": ("501 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "invalid/te_gzip_then_chunked": ("501 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "invalid/chunk_ext_empty_name": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_ext_unterminated_quote": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n"),
    "invalid/chunk_ext_ctl": ("400 close", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n"),
    # ---- line endings and characters ----------------------------------
    "invalid/bare_lf_request_line": ("400 close", b"GET / HTTP/1.1\n" + H + b"\r\n"),
    "invalid/bare_lf_header": ("400 close", b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"),
    "invalid/bare_lf_end_of_head": ("400 close", b"GET / HTTP/1.1\r\nHost: a\r\n\n"),
    "invalid/bare_cr_request_line": ("400 close", b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
    "invalid/bare_cr_header_value": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n"),
    "invalid/obs_fold": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n\tb\r\n\r\n"),
    "invalid/space_before_colon": ("400 close", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    "invalid/tab_before_colon": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X\t: a\r\n\r\n"),
    "invalid/space_in_name": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X Y: a\r\n\r\n"),
    "invalid/header_no_colon": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n"),
    "invalid/header_empty_name": ("400 close", b"GET / HTTP/1.1\r\n" + H + b": a\r\n\r\n"),
    "invalid/header_leading_space": ("400 close", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
    "invalid/ctl_in_name": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X\x01Y: a\r\n\r\n"),
    "invalid/ctl_in_value": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\x01b\r\n\r\n"),
    "invalid/nul_in_value": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n"),
    "invalid/del_in_name": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X\x7fY: a\r\n\r\n"),
    "invalid/del_in_value": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\x7fb\r\n\r\n"),
    "invalid/esc_in_value": ("400 close", b"GET / HTTP/1.1\r\n" + H + b"X: a\x1b[31mb\r\n\r\n"),
    # ---- request line -------------------------------------------------------
    "invalid/method_bad_char": ("400 close", b"G@T / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/method_lowercase": ("501 close", b"get / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/method_empty": ("400 close", b" / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/method_nul": ("400 close", b"GE\x00T / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/two_spaces": ("400 close", b"GET  / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/tab_separator": ("400 close", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_space": ("400 close", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_non_ascii": ("400 close", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_ctl": ("400 close", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_fragment": ("400 close", b"GET /a#frag HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_empty": ("400 close", b"GET  HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_no_slash": ("400 close", b"GET a/b HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_dotdot_escape": ("403 close", b"GET /../../etc/passwd HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/target_encoded_nul": ("400 close", b"GET /a%00b HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/asterisk_with_get": ("400 close", b"GET * HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/version_bad": ("505 close", b"GET / HTTP/9.1\r\n" + H + b"\r\n"),
    "invalid/version_lowercase": ("400 close", b"GET / http/1.1\r\n" + H + b"\r\n"),
    "invalid/version_http20": ("505 close", b"GET / HTTP/2.0\r\n" + H + b"\r\n"),
    "invalid/version_http30": ("505 close", b"GET / HTTP/3.0\r\n" + H + b"\r\n"),
    "invalid/version_http09": ("505 close", b"GET / HTTP/0.9\r\n" + H + b"\r\n"),
    "invalid/method_unknown": ("501 close", b"BREW / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/connect_origin_form": ("400 close", b"CONNECT / HTTP/1.1\r\n" + H + b"\r\n"),
    "invalid/connect_authority_form": ("400 close", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
    "invalid/version_missing": ("400 close", b"GET /\r\n\r\n"),
    "invalid/http2_preface": ("505 close", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    # ---- Host --------------------------------------------------------------------
    "invalid/http11_no_host": ("400 close", b"GET / HTTP/1.1\r\n\r\n"),
    "invalid/two_hosts": ("400 close", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "invalid/two_hosts_same": ("400 close", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
    "invalid/host_userinfo": ("400 close", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"),
    "invalid/host_space": ("400 close", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    "invalid/host_slash": ("400 close", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    "invalid/host_bad_ipv6": ("400 close", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
    "invalid/absolute_form_host_mismatch": ("400 close", b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    "invalid/absolute_form_userinfo": ("400 close", b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    # ---- other refusals ------------------------------------------------------
    "invalid/expect_unknown": ("417 close", b"GET / HTTP/1.1\r\n" + H + b"Expect: teapot\r\n\r\n"),
    "invalid/valid_then_smuggled": ("200 400 close", b"GET / HTTP/1.1\r\n" + H + b"\r\n" + b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),

    # ---- valid -------------------------------------------------------------------
    "valid/get": ("200 open", b"GET / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/pipelined": ("200 200 200 open", (b"GET /a HTTP/1.1\r\n" + H + b"\r\n") * 3),
    "valid/pipelined_mixed": ("200 200/HEAD 200 open", b"GET / HTTP/1.1\r\n" + H + b"\r\nHEAD / HTTP/1.1\r\n" + H + b"\r\nPOST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello"),
    "valid/head": ("200/HEAD open", b"HEAD / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/options_star": ("200 open", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/absolute_form": ("200 open", b"GET http://a/x?y=1 HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/absolute_form_port": ("200 open", b"GET http://a:8080/x HTTP/1.1\r\nHost: a:8080\r\n\r\n"),
    "valid/chunked": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    "valid/chunked_trailers": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"),
    "valid/chunked_extension": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0;q=\"quoted\"\r\n\r\n"),
    "valid/chunked_uppercase_hex_leading_zeros": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\n0\r\n\r\n"),
    "valid/chunked_case_insensitive": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: Chunked\r\n\r\n0\r\n\r\n"),
    "valid/chunked_then_get": ("200 200 open", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/content_length_then_get": ("200 200 open", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/content_length_zero": ("200 open", b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    "valid/http10_no_host": ("200 close", b"GET / HTTP/1.0\r\n\r\n"),
    "valid/http10_keep_alive": ("200 open", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    "valid/connection_close": ("200 close", b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/host_with_port": ("200 open", b"GET / HTTP/1.1\r\nHost: a:8080\r\n\r\n"),
    "valid/host_ipv6": ("200 open", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
    "valid/header_ows": ("200 open", b"GET / HTTP/1.1\r\n" + H + b"X-A:\t value \t\r\nX-B:\r\n\r\n"),
    "valid/header_obs_text": ("200 open", b"GET / HTTP/1.1\r\n" + H + b"X-A: caf\xc3\xa9\r\n\r\n"),
    "valid/percent_encoded_path": ("200 open", b"GET /%7Euser/a%20b HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/query": ("200 open", b"GET /?a=b&c=%20 HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/expect_100_continue": ("200 open", b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
    "valid/unknown_upgrade_ignored": ("200 200 open", b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: foo\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    "valid/version_http12": ("200 200 open", b"GET / HTTP/1.2\r\n" + H + b"\r\nGET / HTTP/1.9\r\n" + H + b"\r\n"),
    "valid/delete": ("200 open", b"DELETE / HTTP/1.1\r\n" + H + b"\r\n"),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, (expect, data) in CASES.items():
        path = os.path.join(here, name + ".http")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"# expect: " + expect.encode() + b"\n" + data)


if __name__ == "__main__":
    main()
