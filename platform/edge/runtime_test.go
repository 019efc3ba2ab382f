package edge

import (
	"net/netip"
	"reflect"
	"testing"
)

// Answers captured from Debian's HAProxy 2.6.12.
const (
	serversStateOut = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 tsys-ci.default.a.http 1 lb0 127.0.0.3 0 0 1 1 615 8 2 0 6 0 0 0 - 9090 - 0 0 - - 0
5 tsys-ci.default.a.ssh 1 lb0 fd00::10 0 0 1 1 609 8 2 0 6 0 0 0 - 22 - 0 0 - - 0

`
	showProcOut = `#<PID>          <type>          <reloads>       <uptime>        <version>      
13820           master          2 [failed: 1]   0d00h10m22s     2.6.12-1+deb12u3
# workers
18656           worker          1               0d00h00m05s     2.6.12-1+deb12u3
# old workers
13821           worker          2               0d00h10m22s     2.6.12-1+deb12u3
# programs

`
)

func TestParseServersState(t *testing.T) {
	got, err := parseServersState(serversStateOut)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ServerState{
		"tsys-ci.default.a.http/lb0": {netip.MustParseAddr("127.0.0.3"), 9090, 1},
		"tsys-ci.default.a.ssh/lb0":  {netip.MustParseAddr("fd00::10"), 22, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseServersState = %v, want %v", got, want)
	}
	if _, err := parseServersState("Unknown command.\n"); err == nil {
		t.Fatal("parseServersState accepted an error answer")
	}
}

// showStatOut is the start of "show stat" of Debian's HAProxy 2.6.12 with
// a pool: the first fields of each line, as the test needs them.
const showStatOut = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
tsys-ci.shop.web.http,blue,0,0,0,1,,19,4000,9000,,0,,0,0,0,0,no check,95
tsys-ci.shop.web.http,green,0,0,0,1,,1,200,450,,0,,0,0,0,0,no check,5
tsys-ci.shop.web.http,BACKEND,0,0,0,1,,20,4200,9450,0,0,,0,0,0,0,UP,100

`

func TestParseStat(t *testing.T) {
	got, err := parseStat(showStatOut)
	if err != nil {
		t.Fatal(err)
	}
	if s := got["tsys-ci.shop.web.http/green"]; s["weight"] != "5" || s["stot"] != "1" || s["status"] != "no check" {
		t.Fatalf("parseStat: green is %v", s)
	}
	if _, err := parseStat("Unknown command.\n"); err == nil {
		t.Fatal("parseStat accepted an error answer")
	}
}

func TestParseProcs(t *testing.T) {
	got, err := parseProcs(showProcOut)
	if err != nil {
		t.Fatal(err)
	}
	want := Procs{MasterPID: 13820, Reloads: 2, FailedReloads: 1,
		Workers:    []Worker{{PID: 18656, Reloads: 1, Uptime: "0d00h00m05s"}},
		OldWorkers: []Worker{{PID: 13821, Reloads: 2, Uptime: "0d00h10m22s"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseProcs = %+v, want %+v", got, want)
	}
	if _, err := parseProcs("Unknown command.\n"); err == nil {
		t.Fatal("parseProcs accepted an error answer")
	}
}

// FuzzParseServersState: the runtime API's answer is outside input; the
// parser must never panic on it.
func FuzzParseServersState(f *testing.F) {
	f.Add(serversStateOut)
	f.Add(showProcOut)
	f.Add(showStatOut)
	f.Fuzz(func(t *testing.T, s string) {
		parseServersState(s)
		parseProcs(s)
		parseStat(s)
	})
}
