package streamauth_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening/streamauth"
)

// An authenticated SSE endpoint that forwards the caller's tenant events
// and ends the stream when the token expires.
func ExampleSSE() {
	auth, _ := streamauth.NewJWT([]byte("a-secret-of-at-least-16-bytes"), streamauth.WithAudience("hub"))
	reg, _ := streamauth.NewRegistry(streamauth.WithMaxStreamsPerUser(5))
	defer reg.Close(context.Background())

	events, _ := streamauth.SSE(auth, reg, streamauth.ForwardSSE)
	mux := http.NewServeMux()
	mux.Handle("GET /events", events)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Without a token: 401 before any stream byte.
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))

	// With a token that expires in two seconds.
	tok, _ := auth.Sign(streamauth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Audience: jwt.ClaimStrings{"hub"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(2 * time.Second))},
		Tenant: "acme",
	})
	resp, err = http.Get(srv.URL + "/events?access_token=" + tok)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	for {
		n, _ := reg.Publish(context.Background(), "acme", streamauth.Event{Type: "greeting", Data: []byte(`"hello"`)})
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // until the handler listens
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() != "" {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// 401 application/problem+json
	// 200 text/event-stream
	// event: greeting
	// data: "hello"
	// event: auth_expired
	// data: {"reason":"expired"}
}

// Revoking every stream of a user, on this replica (and on the others when
// the registry has a Broadcaster such as redisbus).
func ExampleRegistry_Revoke() {
	reg, _ := streamauth.NewRegistry()
	defer reg.Close(context.Background())
	n, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	fmt.Println(n, err)
	fmt.Println(reg.Status().Active)
	// Output:
	// 0 <nil>
	// 0
}

// A WebSocket endpoint: expiry closes with 4001 token_expired, revocation
// with 4003 revoked; clients extend their stream by sending
// {"type":"refresh","token":"..."}.
func ExampleWebSocket() {
	auth, _ := streamauth.NewJWT([]byte("a-secret-of-at-least-16-bytes"))
	reg, _ := streamauth.NewRegistry()
	defer reg.Close(context.Background())
	ws, err := streamauth.WebSocket(auth, reg, streamauth.ForwardWS)
	fmt.Println(err)
	mux := http.NewServeMux()
	mux.Handle("GET /ws", ws)
	// Output: <nil>
}

// Wire an authenticated SSE endpoint into a plain net/http service (the
// README's "Use it in your own service" snippet).
func Example_service() {
	auth, err := streamauth.NewJWT([]byte("a-secret-of-at-least-16-bytes"), streamauth.WithAudience("myapi"))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := streamauth.NewRegistry(streamauth.WithMaxStreamsPerUser(5)) // + WithBroadcaster(redisbus) across replicas
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background()) // ends every stream on shutdown
	events, err := streamauth.SSE(auth, reg, streamauth.ForwardSSE)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", events) // Authorization: Bearer, cookie or ?access_token=
	// Anywhere in the service: an event for one tenant's streams.
	if _, err := reg.Publish(context.Background(), "acme", streamauth.Event{Type: "order.created", Data: []byte(`{"id":"ord_1"}`)}); err != nil {
		log.Print(err) // the other replicas missed it; this one's streams got it
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/events", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 401 application/problem+json
}
