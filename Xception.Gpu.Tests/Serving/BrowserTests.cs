using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xception.Gpu.Tests.Inference;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Serving;

/// <summary>
/// The web page in a real browser: Debian's chromium, driven through its chromedriver (the driver's path is given,
/// nothing is downloaded). Skipped, visibly, where the two are not installed; XCEPTION_REQUIRE_BROWSER=1 (CI sets
/// it) turns the skip into a failure.
/// </summary>
public class BrowserTests
{
    const string Chromium = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

    [Fact]
    public async Task ThePageClassifiesAnUploadAndShowsItsGradCam()
    {
        if (!File.Exists(Chromium) || !File.Exists(Driver))
        {
            string why = $"{Chromium} and {Driver} are needed (Debian: apt-get install chromium chromium-driver)";
            if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_BROWSER") == "1") Assert.Fail("XCEPTION_REQUIRE_BROWSER=1 but " + why);
            Assert.Skip(why);
        }
        await using var host = await ServerHost.Start(features: false);
        using var dir = new TempDir();
        var image = InferenceApiTests.WritePng(dir, "upload.png", 160, 120, 4);

        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--window-size=1200,900", "--user-data-dir=" + dir["profile"]);
        using var driver = new ChromeDriver(service, options, TimeSpan.FromMinutes(2));
        var wait = new WebDriverWait(driver, TimeSpan.FromMinutes(2));

        driver.Navigate().GoToUrl(host.Url + "/");
        Assert.Equal("Xception.Gpu", driver.Title);
        Assert.Equal("xception", driver.FindElement(By.Id("model")).Text);
        driver.FindElement(By.Id("file")).SendKeys(image);

        // Five classes with bars, the most probable first, as the server ranks them.
        var rows = wait.Until(d => d.FindElements(By.CssSelector("#results .row")) is { Count: 5 } r ? r : null);
        var want = host.Classifier.Model.Top(host.Classifier.Model.Probabilities(Preprocessed(image), 1), 5);
        for (int k = 0; k < 5; k++)
        {
            Assert.Equal(want[k].Index.ToString(), rows[k].GetAttribute("data-index"));
            Assert.Contains(want[k].Label, rows[k].Text);
            Assert.Contains($"{100 * want[k].Probability:F1} %", rows[k].Text);
        }
        Assert.Equal(5, driver.FindElements(By.CssSelector("#results .bar span")).Count);

        // Clicking a class loads its Grad-CAM overlay: an image that differs from the upload.
        rows[1].Click();
        var js = (IJavaScriptExecutor)driver;
        wait.Until(_ => js.ExecuteScript("const o = document.getElementById('overlay'); return !!o.getAttribute('src') && o.complete && o.naturalWidth > 0;") is true);
        Assert.Contains(want[1].Label, driver.FindElement(By.Id("overlay-title")).Text);
        var difference = Convert.ToDouble(js.ExecuteScript("""
            const a = document.getElementById('preview'), b = document.getElementById('overlay');
            if (a.naturalWidth !== b.naturalWidth || a.naturalHeight !== b.naturalHeight) return -1;
            const c = document.createElement('canvas');
            c.width = a.naturalWidth; c.height = a.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(a, 0, 0); const pa = g.getImageData(0, 0, c.width, c.height).data;
            g.drawImage(b, 0, 0); const pb = g.getImageData(0, 0, c.width, c.height).data;
            let sum = 0;
            for (let i = 0; i < pa.length; i++) sum += Math.abs(pa[i] - pb[i]);
            return sum / pa.length;
            """));
        Assert.True(difference > 1, $"the overlay differs from the upload by {difference} levels per channel on average (-1: not the same size)");
        Assert.Equal("", driver.FindElement(By.Id("status")).Text);

        var shot = Path.Combine(AppContext.BaseDirectory, "TestResults", "serve-page.png");
        Directory.CreateDirectory(Path.GetDirectoryName(shot)!);
        driver.GetScreenshot().SaveAsFile(shot);
        TestContext.Current.SendDiagnosticMessage($"screenshot of the page: {shot}");
        Assert.True(new FileInfo(shot).Length > 1000);
    }

    static float[] Preprocessed(string path)
    {
        var x = new float[71 * 71 * 3];
        Gpu.Imaging.Preprocess.LoadKerasTf(path, 71, x, 0, Gpu.Imaging.ResizeMode.Bilinear);
        return x;
    }
}
