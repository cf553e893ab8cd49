/* AWS Signature Version 4 for the Authorization header, as S3 documents it:
 *   canonical request = method \n uri \n query \n headers \n signed \n payload hash
 *   string to sign    = AWS4-HMAC-SHA256 \n date \n scope \n hex(sha256(canonical))
 *   key = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")
 * Pure: the caller gives the time, the canonical URI and query already
 * encoded, and the headers sorted. Checked against AWS's published examples
 * in tests/unit/test_artifact.c. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "art_int.h"

#define SIGV4_CANON_MAX 16384

static void sigv4_hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static bool sigv4_hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
                &n) != NULL &&
           n == 32;
}

static bool sigv4_sha_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return false;
    sigv4_hex(md, 32, out);
    return true;
}

static bool sigv4_signing_key(const art_sigv4_cred *c, const char *day, unsigned char key[32])
{
    char first[300];
    unsigned char k1[32], k2[32], k3[32];
    int n = snprintf(first, sizeof first, "AWS4%s", c->secret_key);
    bool ok = n > 0 && (size_t)n < sizeof first && sigv4_hmac(first, (size_t)n, day, k1) &&
              sigv4_hmac(k1, 32, c->region, k2) && sigv4_hmac(k2, 32, c->service, k3) &&
              sigv4_hmac(k3, 32, "aws4_request", key);
    OPENSSL_cleanse(first, sizeof first);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    return ok;
}

hodei_status art_sigv4_authorization(const char *method, const char *canonical_uri,
                                     const char *canonical_query, const art_sigv4_header *headers,
                                     size_t n_headers, const char *payload_hash,
                                     const char *amz_date, const art_sigv4_cred *cred, char *out,
                                     size_t out_len, hodei_err *err)
{
    hodei_status st = HODEI_ERR_LIMIT;
    hodei_buf canon, signed_names;
    char day[9], canon_hash[65], to_sign[512], sig_hex[65];
    unsigned char key[32], sig[32];
    hodei_buf_init(&canon, SIGV4_CANON_MAX);
    hodei_buf_init(&signed_names, 1024);
    if (strlen(amz_date) != 16)
        return hodei_err_set(err, HODEI_ERR_INVALID, "sigv4: bad date");
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    hodei_buf_printf(&canon, "%s\n%s\n%s\n", method, canonical_uri, canonical_query);
    for (size_t i = 0; i < n_headers; i++) {
        hodei_buf_printf(&canon, "%s:%s\n", headers[i].name, headers[i].value);
        hodei_buf_printf(&signed_names, "%s%s", i ? ";" : "", headers[i].name);
    }
    hodei_buf_printf(&canon, "\n%s\n%s", signed_names.data ? signed_names.data : "", payload_hash);
    if (canon.failed || signed_names.failed || !sigv4_sha_hex(canon.data, canon.len, canon_hash)) {
        hodei_err_set(err, st, "sigv4: request too large to sign");
        goto out;
    }
    int n = snprintf(to_sign, sizeof to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
                     amz_date, day, cred->region, cred->service, canon_hash);
    if (n < 0 || (size_t)n >= sizeof to_sign || !sigv4_signing_key(cred, day, key) ||
        !sigv4_hmac(key, 32, to_sign, sig)) {
        hodei_err_set(err, HODEI_ERR_INTERNAL, "sigv4: signing failed");
        goto out;
    }
    sigv4_hex(sig, 32, sig_hex);
    n = snprintf(out, out_len,
                 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 cred->access_key, day, cred->region, cred->service, signed_names.data, sig_hex);
    if (n < 0 || (size_t)n >= out_len) {
        hodei_err_set(err, st, "sigv4: Authorization header too long");
        goto out;
    }
    st = HODEI_OK;
out:
    OPENSSL_cleanse(key, sizeof key);
    hodei_buf_fini(&canon);
    hodei_buf_fini(&signed_names);
    return st;
}
