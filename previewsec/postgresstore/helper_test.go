package postgresstore_test

import (
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// helperEnv names the variable that makes the test binary a child of
// keystoretest.RotateInProcesses: the URL of the shared schema.
const helperEnv = "PREVIEWSEC_HELPER_PG"

// helperProcess runs in a child: keystoretest.RotateChild on the shared
// schema.
func helperProcess(url string) int {
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	defer db.Close()
	s, err := postgresstore.New(db)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	return keystoretest.RotateChild(s)
}
