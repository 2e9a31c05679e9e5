package attribution

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
)

// JavaPackagesOf guesses, from Maven coordinates alone ("group:artifact",
// as an SBOM's components or a scanner's findings name them), the Java
// packages each artifact ships, for Config.JavaPackages. JFR and
// async-profiler frames name classes, not jars, and an SBOM does not list
// an artifact's packages; most artifacts put their classes under their
// group and a name taken from the artifact:
//
//   - org.yaml:snakeyaml ships org.yaml.snakeyaml;
//   - org.apache.logging.log4j:log4j-core ships org.apache.logging.log4j.core
//     (the artifact repeats the group's last element);
//   - com.fasterxml.jackson.core:jackson-databind ships
//     com.fasterxml.jackson.databind (it repeats an earlier element);
//   - org.springframework:spring-beans ships org.springframework.beans (it
//     starts the element "springframework");
//   - org.jsoup:jsoup ships org.jsoup (the artifact is the group's last
//     element).
//
// Well-known artifacts that follow none of these (Guava's com.google.common,
// Gson's com.google.gson, log4j-api's org.apache.logging.log4j, the Commons
// jars of the commons-* groups, Tomcat, Bouncy Castle) get their packages
// from a table.
//
// The group alone is otherwise no candidate: findings list only the
// vulnerable artifacts of a group, and org.apache.commons would then take
// the classes of commons-lang3 for commons-text. A prefix that two
// artifacts claim is left out, so that a class is never given to the wrong
// one. Artifacts that no rule fits are not found; ReadJar reads the
// packages a jar really holds.
func JavaPackagesOf(coords []string) map[string]string {
	owners := make(claims)
	for _, c := range coords {
		g, a, ok := strings.Cut(c, ":")
		if !ok || g == "" || a == "" || strings.Contains(a, ":") {
			continue
		}
		ga := g + ":" + a
		cands := knownJavaPackages(ga)
		if isJavaPackage(g) {
			cands = append(javaCandidates(g, a), cands...)
		}
		for _, p := range cands {
			owners.add(p, ga)
		}
	}
	return owners.sole()
}

// javaCandidates returns the package prefixes artifact a of group g
// probably ships.
func javaCandidates(g, a string) []string {
	segs := strings.Split(g, ".")
	var out []string
	add := func(base []string, tail string) {
		p := strings.Join(append(slices.Clone(base), strings.Split(tail, ".")...), ".")
		if isJavaPackage(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	// The artifact's name as package elements: "-" and "_" separate them.
	name := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return '.'
		}
		return r
	}, strings.ToLower(a))
	for i := len(segs) - 1; i >= 0; i-- {
		first, rest, ok := strings.Cut(name, ".")
		if ok && rest != "" && strings.HasPrefix(segs[i], first) {
			add(segs[:i+1], rest)
		}
	}
	add(segs, name)
	if segs[len(segs)-1] == name {
		add(segs[:len(segs)-1], name)
	}
	return out
}

// knownJavaPackages lists the packages of popular artifacts whose names
// tell nothing of them, for when no jar is at hand.
func knownJavaPackages(ga string) []string {
	g, a, _ := strings.Cut(ga, ":")
	switch {
	case ga == "com.google.guava:guava":
		return []string{"com.google.common", "com.google.thirdparty"}
	case ga == "com.google.code.gson:gson":
		return []string{"com.google.gson"}
	case ga == "org.apache.logging.log4j:log4j-api":
		return []string{"org.apache.logging.log4j"}
	case ga == "log4j:log4j":
		return []string{"org.apache.log4j"}
	case g == "commons-io" || g == "commons-collections" || g == "commons-lang" || g == "commons-fileupload" ||
		g == "commons-beanutils" || g == "commons-codec" || g == "commons-logging":
		if g == a {
			return []string{"org.apache.commons." + strings.TrimPrefix(g, "commons-")}
		}
	case ga == "org.apache.tomcat.embed:tomcat-embed-core":
		return []string{"org.apache.catalina", "org.apache.coyote", "org.apache.tomcat", "org.apache.naming"}
	case ga == "org.springframework:spring-webmvc":
		return []string{"org.springframework.web.servlet"}
	case ga == "org.springframework:spring-webflux":
		return []string{"org.springframework.web.reactive"}
	case g == "org.bouncycastle" && (strings.HasPrefix(a, "bcprov-") || strings.HasPrefix(a, "bcprov-ext-")):
		return []string{"org.bouncycastle.crypto", "org.bouncycastle.jce", "org.bouncycastle.jcajce", "org.bouncycastle.math", "org.bouncycastle.util", "org.bouncycastle.asn1"}
	case ga == "com.h2database:h2":
		return []string{"org.h2"}
	case ga == "com.squareup.okhttp3:okhttp":
		return []string{"okhttp3"}
	}
	return nil
}

// ErrNotJar marks a file that is not a jar (a zip archive) or has no
// classes and no Maven coordinates.
var ErrNotJar = errors.New("not a jar")

// Jar is what a jar tells about the code it ships.
type Jar struct {
	// Coordinates are the "group:artifact" of each
	// META-INF/maven/<group>/<artifact>/pom.properties it holds: one for a
	// plain jar, several for a shaded one, none for a jar not built by
	// Maven.
	Coordinates []string
	// Versions are the versions those pom.properties state, by
	// coordinates.
	Versions map[string]string
	// Packages are the Java packages of its classes, sorted; classes
	// under META-INF/versions/<n>/ count in their package.
	Packages []string
}

// ReadJar reads the Maven coordinates and the packages of a jar. name
// names the jar in errors.
func ReadJar(r io.ReaderAt, size int64, name string) (Jar, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Jar{}, fmt.Errorf("read jar %s: %w: %w", name, ErrNotJar, err)
	}
	j := Jar{Versions: make(map[string]string)}
	pkgs := make(map[string]struct{})
	for _, f := range zr.File {
		n := f.Name
		if rest, ok := strings.CutPrefix(n, "META-INF/versions/"); ok {
			if _, after, ok := strings.Cut(rest, "/"); ok {
				n = after
			}
		}
		switch {
		case strings.HasPrefix(n, "META-INF/maven/") && path.Base(n) == "pom.properties":
			ga, v, err := readPomProperties(f)
			if err != nil {
				return Jar{}, fmt.Errorf("read jar %s: %s: %w", name, f.Name, err)
			}
			if ga != "" && !slices.Contains(j.Coordinates, ga) {
				j.Coordinates = append(j.Coordinates, ga)
				j.Versions[ga] = v
			}
		case strings.HasSuffix(n, ".class") && !strings.HasPrefix(n, "META-INF/"):
			dir := path.Dir(n)
			if p := strings.ReplaceAll(dir, "/", "."); dir != "." && isJavaPackage(p) {
				pkgs[p] = struct{}{}
			}
		}
	}
	j.Packages = slices.Sorted(maps.Keys(pkgs))
	slices.Sort(j.Coordinates)
	if len(j.Packages) == 0 && len(j.Coordinates) == 0 {
		return Jar{}, fmt.Errorf("read jar %s: %w: no classes and no pom.properties", name, ErrNotJar)
	}
	return j, nil
}

// readPomProperties reads groupId, artifactId and version from a
// pom.properties file (java.util.Properties syntax, written by Maven as
// plain "key=value" lines).
func readPomProperties(f *zip.File) (ga, version string, err error) {
	rc, err := f.Open()
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	props := make(map[string]string)
	sc := bufio.NewScanner(io.LimitReader(rc, 64<<10))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, _ = strings.Cut(line, ":")
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	g, a := props["groupId"], props["artifactId"]
	if g == "" || a == "" {
		return "", "", errors.New("pom.properties without groupId or artifactId")
	}
	return g + ":" + a, props["version"], nil
}

// JavaPackages maps each package of the jar to the artifact that ships it,
// for Config.JavaPackages: the jar's only coordinates, or, in a shaded jar
// with several, the artifact whose guessed packages (JavaPackagesOf) hold
// it. A package the jar relocated ("com.acme.shaded.org.yaml.snakeyaml",
// see Config.JavaRelocations) is mapped by its original name, which
// attribution looks for behind the relocation. It returns nil for a jar
// without coordinates: its classes may be the application's own or an
// unnamed library's.
func (j Jar) JavaPackages() map[string]string {
	if len(j.Coordinates) == 0 {
		return nil
	}
	out := make(map[string]string, len(j.Packages))
	if len(j.Coordinates) == 1 {
		for _, p := range j.Packages {
			out[p] = j.Coordinates[0]
		}
		return out
	}
	guess := JavaPackagesOf(j.Coordinates)
	for _, p := range j.Packages {
		if orig, ga, ok := relocatedIn(guess, p); ok {
			out[orig] = ga
			continue
		}
		if _, ga, ok := longestPrefix(guess, p, '.'); ok {
			out[p] = ga
		}
	}
	return out
}
