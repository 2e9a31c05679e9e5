// ReadArchives reads each file named on the command line as an application
// reading an uploaded archive would: a compressor the factory detects
// (gzip, bzip2…) first, then the archive the factory detects, every entry.
// All files are read at once, each in its own thread; after the deadline
// (first argument, in milliseconds) it prints, per file, "read N" (entries),
// "error MESSAGE", or "running" for a read that has not ended, and exits.
// TestArchiveVariantsInCommonsCompress (archive_test.go) runs it against a
// vulnerable commons-compress.
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.ArchiveInputStream;
import org.apache.commons.compress.archivers.ArchiveStreamFactory;
import org.apache.commons.compress.compressors.CompressorException;
import org.apache.commons.compress.compressors.CompressorStreamFactory;

public class ReadArchives {
    static String read(byte[] body) {
        try {
            InputStream in = new BufferedInputStream(new ByteArrayInputStream(body));
            try {
                in = new BufferedInputStream(new CompressorStreamFactory().createCompressorInputStream(in));
            } catch (CompressorException notCompressed) {
                // read as is
            }
            String kind = ArchiveStreamFactory.detect(in);
            int n = 0;
            try (ArchiveInputStream a = new ArchiveStreamFactory().createArchiveInputStream(kind, in)) {
                while (a.getNextEntry() != null) {
                    n++;
                }
            }
            return "read " + n;
        } catch (Throwable t) {
            return ("error " + t).replace('\n', ' ');
        }
    }

    public static void main(String[] args) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Long.parseLong(args[0]));
        List<CompletableFuture<String>> reads = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            byte[] body = Files.readAllBytes(Paths.get(args[i]));
            reads.add(CompletableFuture.supplyAsync(() -> read(body), r -> {
                Thread t = new Thread(r);
                t.setDaemon(true);
                t.start();
            }));
        }
        for (int i = 0; i < reads.size(); i++) {
            String out;
            try {
                out = reads.get(i).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                out = "running";
            }
            System.out.println(args[i + 1] + "\t" + out);
        }
        System.exit(0);
    }
}
