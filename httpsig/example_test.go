package httpsig_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/clawguard/clawguard/httpsig"
)

// A client signs a POST; the server verifies it and gets the verified body.
func Example() {
	key, _ := httpsig.ParseKey([]byte("base64:uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="))

	v, _ := httpsig.NewVerifier(httpsig.Config{Keys: map[string][]byte{"ci": key}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err != nil {
			e := err.(*httpsig.Error)
			http.Error(w, e.Code, e.HTTPStatus())
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s sent %s", res.KeyID, body)
	}))
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/hooks/deploy", strings.NewReader(`{"ref":"main"}`))
	if err := httpsig.Sign(req, "ci", key); err != nil {
		panic(err)
	}
	resp, _ := http.DefaultClient.Do(req)
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(out))

	// The same request again is a replay.
	again := req.Clone(req.Context())
	again.Body, _ = req.GetBody()
	resp, _ = http.DefaultClient.Do(again)
	out, _ = io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(out)))
	// Output:
	// 200 ci sent {"ref":"main"}
	// 401 replay
}
