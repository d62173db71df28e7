package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustPods(t *testing.T, js string) []pod {
	t.Helper()
	var out []pod
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustPolicies(t *testing.T, js string) []networkPolicy {
	t.Helper()
	var out []networkPolicy
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const podsJSON = `[
 {"metadata":{"name":"server","namespace":"a","labels":{"app":"server"}},
  "spec":{"nodeName":"n1","containers":[{"ports":[{"name":"http","containerPort":8080}]}]},
  "status":{"podIP":"10.244.1.5","phase":"Running"}},
 {"metadata":{"name":"client","namespace":"a","labels":{"app":"client"}},
  "spec":{"nodeName":"n2"},"status":{"podIP":"10.244.2.7","phase":"Running"}},
 {"metadata":{"name":"other","namespace":"b","labels":{"app":"client"}},
  "spec":{"nodeName":"n2"},"status":{"podIP":"10.244.2.8","phase":"Running"}}
]`

func world1(t *testing.T, policies string) world {
	return world{pods: mustPods(t, podsJSON), policies: mustPolicies(t, policies),
		namespaces: map[string]map[string]string{"a": {"team": "a"}, "b": {"team": "b"}}}
}

func TestNoPoliciesOnlyLetEstablishedTrafficThrough(t *testing.T) {
	w := world1(t, `[]`)
	text, chains := w.rules("n1")
	if len(chains) != 1 || strings.Count(text, "-A ") != 1 {
		t.Fatalf("want only FLOE-NP with the established rule, got:\n%s", text)
	}
}

func TestDefaultDenyIngressRejectsEverythingToTheSelectedPod(t *testing.T) {
	w := world1(t, `[{"metadata":{"name":"deny","namespace":"a"},"spec":{"podSelector":{}}}]`)
	text, _ := w.rules("n1")
	in := chainID("IN", &w.pods[0])
	for _, want := range []string{"-A FLOE-NP -d 10.244.1.5/32 -j " + in, "-A " + in + " -m mark ! --mark 0x10000/0x10000"} {
		if !strings.Contains(text, want) {
			t.Fatalf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "--set-xmark 0x10000/0x10000") {
		t.Fatalf("a default deny allows nothing:\n%s", text)
	}
}

func TestIngressFromPodSelectorOnANamedPortAllowsOnlyThatPeerAndPort(t *testing.T) {
	w := world1(t, `[{"metadata":{"name":"allow","namespace":"a"},"spec":{"podSelector":{"matchLabels":{"app":"server"}},
	  "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"client"}}}],"ports":[{"port":"http"}]}]}}]`)
	text, _ := w.rules("n1")
	in := chainID("IN", &w.pods[0])
	want := "-A " + in + " -s 10.244.2.7/32 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x10000/0x10000"
	if !strings.Contains(text, want) {
		t.Fatalf("missing %q in:\n%s", want, text)
	}
	if strings.Contains(text, "10.244.2.8") {
		t.Fatalf("the pod in namespace b must not be allowed (podSelector alone means the policy's namespace):\n%s", text)
	}
}

func TestNamespaceSelectorAllowsPodsOfMatchingNamespaces(t *testing.T) {
	w := world1(t, `[{"metadata":{"name":"allow","namespace":"a"},"spec":{"podSelector":{},
	  "ingress":[{"from":[{"namespaceSelector":{"matchExpressions":[{"key":"team","operator":"In","values":["b"]}]}}]}]}}]`)
	text, _ := w.rules("n1")
	if !strings.Contains(text, "-s 10.244.2.8/32 -j MARK") || strings.Contains(text, "-s 10.244.2.7/32") {
		t.Fatalf("want only the pod of namespace b allowed:\n%s", text)
	}
}

func TestEgressIPBlockExceptionsGetASubChain(t *testing.T) {
	w := world1(t, `[{"metadata":{"name":"egress","namespace":"a"},"spec":{"podSelector":{},"policyTypes":["Egress"],
	  "egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.244.2.0/24"]}}],"ports":[{"protocol":"UDP","port":53}]}]}}]`)
	text, chains := w.rules("n1")
	out := chainID("OUT", &w.pods[0])
	for _, want := range []string{
		"-A FLOE-NP -s 10.244.1.5/32 -j " + out,
		"-A " + out + " -d 10.0.0.0/8 -j " + out + "-0",
		"-A " + out + "-0 -d 10.244.2.0/24 -j RETURN",
		"-A " + out + "-0 -p udp -m udp --dport 53 -j MARK --set-xmark 0x10000/0x10000",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("missing %q in:\n%s", want, text)
		}
	}
	if len(chains) != 3 || strings.Contains(text, chainID("IN", &w.pods[0])) {
		t.Fatalf("want FLOE-NP, the egress chain and its sub-chain only (no ingress isolation): %v", chains)
	}
}

func TestEstablishedRuleComesBeforeThePodJumps(t *testing.T) {
	w := world1(t, `[{"metadata":{"name":"deny","namespace":"a"},"spec":{"podSelector":{}}}]`)
	text, _ := w.rules("n1")
	if strings.Index(text, "ESTABLISHED") > strings.Index(text, "-A FLOE-NP -d") {
		t.Fatalf("established traffic must be let through first:\n%s", text)
	}
}

func TestChainNamesFitIptablesLimit(t *testing.T) {
	w := world1(t, `[]`)
	if n := len(chainID("OUT", &w.pods[0]) + "-99"); n > 28 {
		t.Fatalf("chain names must be at most 28 characters, got %d", n)
	}
}
