"""The few words the renderer itself puts on a page, per language (English when not listed).

Material translates its own interface (`theme.language`); these are ours: the marker on a
paragraph still shown in English, the generated "Translation status" page, and the
notebook pages' buttons and notes.
"""

# ruff: noqa: E501
from __future__ import annotations

STRINGS = {
    "si": {
        "Link to this section": "මෙම කොටසට සබැඳිය",
        "missing": "ඉංග්‍රීසියෙන්: තවම පරිවර්තනය කර නැත",
        "stale": "ඉංග්‍රීසියෙන්: ඉංග්‍රීසි පාඨය වෙනස් වූ බැවින් පරිවර්තනය යාවත්කාලීන කළ යුතුය",
        "invalid": "ඉංග්‍රීසියෙන්: පරිවර්තනය පරීක්ෂාව සමත් නොවීය",
        "Translation status": "පරිවර්තන තත්ත්වය",
        "status intro": "එක් එක් භාෂාවට එක් එක් පිටුවේ ඡේද කීයක් පරිවර්තනය කර ඇත්ද යන්න. මෙම පිටුව ගොඩනැගීමේදී ස්වයංක්‍රීයව සෑදේ.",
        "Page": "පිටුව",
        "Translated": "පරිවර්තිත",
        "Missing": "නැති",
        "Stale": "යල් පැන ගිය",
        "Orphaned": "අනාථ",
        "Invalid": "වලංගු නොවන",
        "Total": "එකතුව",
        "help": "පරිවර්තනයක් එක් කිරීමට හෝ නිවැරදි කිරීමට, පරිවර්තකයන් සඳහා වූ පිටුව බලන්න.",
        "Notebooks": "සටහන් පොත්",
        "Open in Colab": "Colab හි විවෘත කරන්න",
        "View on GitHub": "GitHub හි බලන්න",
        "notebooks intro": "මෙම සටහන් පොත් ඔබේ පරිගණකයේ CPU එකෙහි හෝ Colab හි GPU එකක ධාවනය කළ හැකිය. සෑම පරීක්ෂණ ධාවනයක්ම ඒවා කුඩා ප්‍රමාණයෙන් ධාවනය කරයි.",
        "outputs note": "පහත ප්‍රතිදාන, මෙම වෙබ් අඩවිය ගොඩනැගීමට පෙර CPU එකක කුඩා (smoke) ප්‍රමාණයෙන් කළ ධාවනයකින් ය. සම්පූර්ණ ප්‍රමාණය සඳහා Colab හි විවෘත කරන්න.",
        # notebook pages: the download button and the line on where the outputs were made
        "Download notebook": "සටහන් පොත බාගන්න",
        "These outputs come from a run on {device} at size “{size}” ({settings}) that took {seconds} s, on {date}.": "මෙම ප්‍රතිදාන, {date} දින {device} මත “{size}” ප්‍රමාණයෙන් ({settings}) කළ ධාවනයකින් ලැබුණු ඒවා ය. ධාවනයට තත්පර {seconds} ගත විය.",
        "These outputs come from a run on {device} with {settings} that took {seconds} s, on {date}.": "මෙම ප්‍රතිදාන, {date} දින {device} මත {settings} සමඟ කළ ධාවනයකින් ලැබුණු ඒවා ය. ධාවනයට තත්පර {seconds} ගත විය.",
    },
    "zh": {
        "Link to this section": "链接到本节",
        "missing": "英文原文：尚未翻译",
        "stale": "英文原文：英文已修改，译文需要更新",
        "invalid": "英文原文：译文未通过检查",
        "Translation status": "翻译进度",
        "status intro": "每个页面有多少段落已译成各语言。本页在构建时自动生成。",
        "Page": "页面",
        "Translated": "已翻译",
        "Missing": "缺失",
        "Stale": "过期",
        "Orphaned": "孤立",
        "Invalid": "无效",
        "Total": "合计",
        "help": "如需添加或修改译文，请参阅面向译者的页面。",
        "Notebooks": "笔记本",
        "Open in Colab": "在 Colab 中打开",
        "View on GitHub": "在 GitHub 上查看",
        "notebooks intro": "这些笔记本既能在笔记本电脑的 CPU 上运行，也能在 Colab 的 GPU 上运行。每次测试都会以小规模执行它们，因此它们不会在无人察觉时失效。",
        "outputs note": "下面的输出来自构建本网站之前在 CPU 上以冒烟测试规模运行的结果。在 Colab 中打开即可按完整规模运行。",
        # notebook pages: the download button and the line on where the outputs were made
        "Download notebook": "下载笔记本",
        "These outputs come from a run on {device} at size “{size}” ({settings}) that took {seconds} s, on {date}.": "以下输出来自 {date} 在 {device} 上以“{size}”规模（{settings}）进行的一次运行，耗时 {seconds} 秒。",
        "These outputs come from a run on {device} with {settings} that took {seconds} s, on {date}.": "以下输出来自 {date} 在 {device} 上以 {settings} 进行的一次运行，耗时 {seconds} 秒。",
    },
    "ja": {
        "Link to this section": "このセクションへのリンク",
        "missing": "英語のまま：まだ翻訳されていない",
        "stale": "英語のまま：英語の原文が変わったため、翻訳の更新が必要",
        "invalid": "英語のまま：翻訳がチェックを通らなかった",
        "Translation status": "翻訳状況",
        "status intro": "各ページの段落のうち、各言語に翻訳済みのものの数。このページはビルド時に自動生成される。",
        "Page": "ページ",
        "Translated": "翻訳済み",
        "Missing": "未翻訳",
        "Stale": "古い",
        "Orphaned": "孤児",
        "Invalid": "無効",
        "Total": "合計",
        "help": "翻訳を追加・修正するには、翻訳者向けのページを参照。",
        "Notebooks": "ノートブック",
        "Open in Colab": "Colab で開く",
        "View on GitHub": "GitHub で見る",
        "notebooks intro": "これらのノートブックはノート PC の CPU でも Colab の GPU でも動く。テストのたびに小さなサイズで実行されるので、気づかないうちに壊れることはない。",
        "outputs note": "以下の出力は、サイトのビルド前に CPU 上でスモークサイズで実行した結果である。フルサイズで実行するには Colab で開く。",
        # notebook pages: the download button and the line on where the outputs were made
        "Download notebook": "ノートブックをダウンロード",
        "These outputs come from a run on {device} at size “{size}” ({settings}) that took {seconds} s, on {date}.": "以下の出力は、{date} に {device} 上でサイズ「{size}」（{settings}）で実行した結果である。実行には {seconds} 秒かかった。",
        "These outputs come from a run on {device} with {settings} that took {seconds} s, on {date}.": "以下の出力は、{date} に {device} 上で {settings} として実行した結果である。実行には {seconds} 秒かかった。",
    },
}

ENGLISH = {
    "missing": "English: not translated yet",
    "stale": "English: the English changed, so the translation needs updating",
    "invalid": "English: the translation did not pass the check",
    "status intro": "How many paragraphs of each page are translated into each language. This page is generated by the build.",
    "help": "To add or fix a translation, see the page for translators.",
    "notebooks intro": "These notebooks run on a laptop's CPU and on a Colab GPU. Every test run executes them at a small size, so they cannot rot unnoticed.",
    "outputs note": "The outputs below come from a run at smoke size on a CPU, made before the site was built. Open the notebook in Colab to run it at full size.",
}


def t(lang: str, text: str) -> str:
    return STRINGS.get(lang, {}).get(text) or ENGLISH.get(text, text)
